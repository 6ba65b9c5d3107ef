/** Reads weir_batch_size_rows (a Prometheus histogram) from a /metrics endpoint. */

export interface HistogramTotals {
  sum: number;
  count: number;
}

const HISTOGRAM = 'weir_batch_size_rows';

/**
 * The histogram's _sum and _count, added over its series; only the series
 * labelled model="<model>" when the series carry a model label.
 */
export function parseBatchHistogram(text: string, model: string): HistogramTotals | null {
  const series: { labels: string; field: 'sum' | 'count'; value: number }[] = [];
  const line = new RegExp(`^${HISTOGRAM}_(sum|count)(\\{[^}]*\\})?\\s+(\\S+)`);
  for (const row of text.split('\n')) {
    const match = line.exec(row.trim());
    if (match) series.push({ field: match[1] as 'sum' | 'count', labels: match[2] ?? '', value: Number(match[3]) });
  }
  if (series.length === 0) return null;
  const labelled = series.some((s) => /(^|[{,])model="/.test(s.labels));
  const mine = labelled ? series.filter((s) => s.labels.includes(`model="${model}"`)) : series;
  const totals = { sum: 0, count: 0 };
  for (const s of mine) totals[s.field] += s.value;
  return totals;
}

/** Scrapes `url`; null when it cannot be read or has no such histogram. */
export async function scrapeBatchHistogram(url: string | null, model: string): Promise<HistogramTotals | null> {
  if (url === null) return null;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (response.status !== 200) return null;
    return parseBatchHistogram(await response.text(), model);
  } catch {
    return null;
  }
}

/** Mean rows per batch between two scrapes; null when either is missing or nothing ran. */
export function meanBatchSize(before: HistogramTotals | null, after: HistogramTotals | null): number | null {
  if (before === null || after === null) return null;
  const count = after.count - before.count;
  return count > 0 ? Number(((after.sum - before.sum) / count).toFixed(2)) : null;
}

/** Requests by outcome (weir_requests_total) for `model`: successes, failures, and failures by reason (the error code). */
export interface RequestOutcomes {
  success: number;
  failure: number;
  reasons: Record<string, number>;
}

export async function scrapeRequestOutcomes(url: string | null, model: string): Promise<RequestOutcomes | null> {
  if (url === null) return null;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (response.status !== 200) return null;
    const totals: RequestOutcomes = { success: 0, failure: 0, reasons: {} };
    for (const row of (await response.text()).split('\n')) {
      const match = /^weir_requests_total\{([^}]*)\}\s+(\S+)/.exec(row.trim());
      if (!match || !(match[1] as string).includes(`model="${model}"`)) continue;
      const count = Number(match[2]);
      if ((match[1] as string).includes('outcome="success"')) {
        totals.success += count;
        continue;
      }
      totals.failure += count;
      const reason = /reason="([^"]*)"/.exec(match[1] as string)?.[1] ?? '';
      totals.reasons[reason] = (totals.reasons[reason] ?? 0) + count;
    }
    return totals;
  } catch {
    return null;
  }
}

/** Failures by reason between two scrapes (reasons that did not grow are left out). */
export function failuresBetween(before: RequestOutcomes, after: RequestOutcomes): Record<string, number> {
  const grown: Record<string, number> = {};
  for (const [reason, count] of Object.entries(after.reasons)) {
    const added = count - (before.reasons[reason] ?? 0);
    if (added > 0) grown[reason] = added;
  }
  return grown;
}
