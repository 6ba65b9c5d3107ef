/**
 * The messages of proto/grpc_service.proto as the codec and server see them:
 * decoded with the loader options of proto.ts (int64 as decimal strings,
 * bytes as Buffers, every field present), and built as plain objects for
 * the serializer, which takes numbers for int64 fields as well.
 */

/** int64 and uint64 fields as decoded. */
export type Int64 = string;

export interface InferParameter {
  bool_param?: boolean;
  int64_param?: Int64 | number;
  string_param?: string;
  double_param?: number;
  uint64_param?: Int64 | number;
  /** Which member of the oneof is set (decoded messages only). */
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
}

export type Parameters = Record<string, InferParameter>;

export interface InferTensorContents {
  bool_contents: boolean[];
  int_contents: number[];
  int64_contents: Int64[];
  uint_contents: number[];
  uint64_contents: Int64[];
  fp32_contents: number[];
  fp64_contents: number[];
  bytes_contents: Buffer[];
}

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters: Parameters;
  /** null when the client sent none. */
  contents: InferTensorContents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Parameters;
  inputs: InferInputTensor[];
  outputs: Array<{ name: string; parameters: Parameters }>;
  raw_input_contents: Buffer[];
}

export interface InferOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Parameters;
  outputs: InferOutputTensor[];
  raw_output_contents: Buffer[];
}

export interface ModelStreamInferResponse {
  error_message: string;
  infer_response: Partial<ModelInferResponse> | null;
}

/** ModelReady, ModelMetadata and ModelConfig requests: an empty version means none given. */
export interface ModelRequest {
  name: string;
  version: string;
}
