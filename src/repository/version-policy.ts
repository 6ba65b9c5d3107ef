import type { VersionPolicy } from './model-config.js';

/** The versions a policy serves, newest first, out of those on disk. */
export function selectVersions(policy: VersionPolicy, onDisk: readonly number[]): number[] {
  const newestFirst = [...onDisk].sort((a, b) => b - a);
  switch (policy.kind) {
    case 'all':
      return newestFirst;
    case 'latest':
      return newestFirst.slice(0, policy.numVersions);
    case 'specific':
      return newestFirst.filter((v) => policy.versions.includes(v));
  }
}
