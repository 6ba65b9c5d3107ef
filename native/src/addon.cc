// The JavaScript surface of the addon. Every function turns C++ failures into
// Error objects with a stable `code`. `run` is synchronous by design: it is
// called only inside worker threads, and it makes no JavaScript calls while
// ONNX Runtime computes.
#include <napi.h>

#include <cstring>

#include "batch_group.h"
#include "doorbell.h"
#include "errors.h"
#include "json_format.h"
#include "json_lift.h"
#include "ort_runtime.h"
#include "session_registry.h"
#include "tensor_convert.h"
#include "wait_word.h"

namespace weir {
namespace {

// Buffers kept between calls stay only as large as small bodies need: one
// large body (decoded or encoded in a worker) must not pin its size for good.
constexpr size_t kKeptBufferBytes = size_t{1} << 20;

template <typename Buffer>
void Trim(Buffer& buffer) {
  if (buffer.capacity() * sizeof(typename Buffer::value_type) > kKeptBufferBytes) Buffer().swap(buffer);
}

Napi::Error ToJsError(Napi::Env env, const std::string& code, const std::string& message) {
  auto error = Napi::Error::New(env, message);
  error.Set("code", code);
  return error;
}

// Runs `body`, rethrowing C++ failures as coded JavaScript errors.
template <typename Body>
Napi::Value Guarded(Napi::Env env, Body body) {
  try {
    return body();
  } catch (const CodedError& e) {
    throw ToJsError(env, e.code(), e.what());
  } catch (const Ort::Exception& e) {
    throw ToJsError(env, OrtErrorCodeName(e.GetOrtErrorCode()), e.what());
  } catch (const std::bad_alloc&) {
    throw ToJsError(env, "WEIR_OUT_OF_MEMORY", "out of memory");
  }
}

std::string StringArgument(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsString()) throw CodedError("WEIR_BAD_ARGUMENT", std::string(name) + " must be a string");
  return info[index].As<Napi::String>().Utf8Value();
}

GraphOptimizationLevel ParseOptimization(const std::string& level) {
  if (level == "disable") return ORT_DISABLE_ALL;
  if (level == "basic") return ORT_ENABLE_BASIC;
  if (level == "extended") return ORT_ENABLE_EXTENDED;
  if (level == "all") return ORT_ENABLE_ALL;
  throw CodedError("WEIR_BAD_ARGUMENT",
                   "graphOptimization must be 'disable', 'basic', 'extended' or 'all', got '" + level + "'");
}

// The JavaScript side validated these; here they are only copied out.
SessionConfig ReadSessionConfig(const Napi::Value& value) {
  SessionConfig config;
  if (!value.IsObject()) return config;
  auto options = value.As<Napi::Object>();
  auto int_option = [&](const char* key, int fallback) {
    Napi::Value v = options.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
  };
  auto string_option = [&](const char* key, const char* fallback) {
    Napi::Value v = options.Get(key);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(fallback);
  };
  config.intra_op_threads = int_option("intraOpThreads", config.intra_op_threads);
  config.inter_op_threads = int_option("interOpThreads", config.inter_op_threads);
  config.optimization = ParseOptimization(string_option("graphOptimization", "all"));
  config.execution_provider = string_option("executionProvider", "cpu");
  config.device_id = int_option("deviceId", 0);
  Napi::Value fallback = options.Get("cpuFallback");
  config.cpu_fallback = fallback.IsBoolean() && fallback.As<Napi::Boolean>().Value();
  return config;
}

// Loads a session on the libuv pool, so that a large model does not stall
// the calling thread's event loop.
class LoadSessionWorker : public Napi::AsyncWorker {
 public:
  LoadSessionWorker(Napi::Env env, std::string key, std::string path, SessionConfig config)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), key_(std::move(key)),
        path_(std::move(path)), config_(std::move(config)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      session_ = SessionRegistry::Instance().Load(key_, path_, config_);
    } catch (const CodedError& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = "WEIR_INTERNAL";
      SetError(e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto result = Napi::Object::New(env);
    result.Set("key", key_);
    result.Set("provider", session_->provider());
    result.Set("fallbackReason", session_->fallback_reason().empty()
                                     ? env.Null()
                                     : Napi::Value(Napi::String::New(env, session_->fallback_reason())));
    auto write_specs = [&](const std::vector<ValueSpec>& specs) {
      auto array = Napi::Array::New(env, specs.size());
      for (size_t i = 0; i < specs.size(); ++i) array.Set(i, WriteValueSpec(env, specs[i]));
      return array;
    };
    result.Set("inputs", write_specs(session_->inputs()));
    result.Set("outputs", write_specs(session_->outputs()));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override {
    deferred_.Reject(ToJsError(Env(), code_, error.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string key_;
  std::string path_;
  SessionConfig config_;
  std::string code_;
  std::shared_ptr<ModelSession> session_;
};

}  // namespace
}  // namespace weir

using namespace weir;  // NODE_API_ADDON needs an unqualified class name

class WeirAddon : public Napi::Addon<WeirAddon> {
 public:
  WeirAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod("initRuntime", &WeirAddon::InitRuntimeJs),
                             InstanceMethod("loadSession", &WeirAddon::LoadSession),
                             InstanceMethod("releaseSession", &WeirAddon::ReleaseSession),
                             InstanceMethod("run", &WeirAddon::Run),
                             InstanceMethod("runBatchGroup", &WeirAddon::RunGroup),
                             InstanceMethod("runFlatBatchGroup", &WeirAddon::RunFlatGroup),
                             InstanceMethod("sessions", &WeirAddon::Sessions),
                             InstanceMethod("liveSessionCount", &WeirAddon::LiveSessionCount),
                             InstanceMethod("copyBytes", &WeirAddon::CopyBytes),
                             InstanceMethod("liftJsonData", &WeirAddon::LiftJsonData),
                             InstanceMethod("jsonNumbers", &WeirAddon::JsonNumbers),
                             InstanceMethod("openDoorbell", &WeirAddon::OpenDoorbellJs),
                             InstanceMethod("ringDoorbell", &WeirAddon::RingDoorbellJs),
                             InstanceMethod("closeDoorbell", &WeirAddon::CloseDoorbellJs),
                             InstanceMethod("waitOnWord", &WeirAddon::WaitOnWordJs),
                             InstanceMethod("wakeWord", &WeirAddon::WakeWordJs),
                         });
  }

 private:
  // initRuntime(libraryPath) -> { libraryPath, version, apiVersion }
  Napi::Value InitRuntimeJs(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      RuntimeInfo runtime = InitRuntime(StringArgument(info, 0, "libraryPath"));
      auto result = Napi::Object::New(info.Env());
      result.Set("libraryPath", runtime.library_path);
      result.Set("version", runtime.version);
      result.Set("apiVersion", runtime.api_version);
      return result;
    });
  }

  // loadSession(key, modelPath, options) -> Promise<SessionInfo>
  Napi::Value LoadSession(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      RuntimeEnv();  // fail fast, on the calling thread, before the runtime exists
      auto* worker = new LoadSessionWorker(info.Env(), StringArgument(info, 0, "key"),
                                           StringArgument(info, 1, "modelPath"), ReadSessionConfig(info[2]));
      Napi::Promise promise = worker->Promise();
      worker->Queue();
      return promise;
    });
  }

  // releaseSession(key) -> references left
  Napi::Value ReleaseSession(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), SessionRegistry::Instance().Release(StringArgument(info, 0, "key")));
    });
  }

  // run(key, inputs, outputNames?) -> [runNs, name, datatype, shape, data, ...]
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guarded(env, [&]() -> Napi::Value {
      if (!info[0].IsString()) throw CodedError("WEIR_BAD_ARGUMENT", "key must be a string");
      std::shared_ptr<ModelSession> session = SessionRegistry::Instance().Find(std::string(Utf8(info[0]).view()));
      if (!info[1].IsArray()) throw CodedError("WEIR_BAD_TENSOR", "inputs must be an array of tensors");
      auto input_array = info[1].As<Napi::Array>();
      std::vector<InputTensor> inputs;
      inputs.reserve(input_array.Length());
      for (uint32_t i = 0; i < input_array.Length(); ++i) {
        inputs.push_back(ReadInputTensor(*session, input_array.Get(i), i));
      }
      std::vector<size_t> outputs = ReadOutputSelection(*session, info[2]);

      return WriteRunResult(env, *session, session->Run(inputs, std::move(outputs)));
    });
  }

  // runBatchGroup(message, packLimit) -> message: see batch_group.h
  // runFlatBatchGroup(request: Uint8Array, reply: Uint8Array, packLimit): true
  // once the replies are in `reply`, else the replies as a wire message.
  Napi::Value RunFlatGroup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guarded(env, [&]() -> Napi::Value {
      auto bytes = [&](size_t index) -> std::pair<uint8_t*, size_t> {
        if (!info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
          throw CodedError("WEIR_BAD_ARGUMENT", "runFlatBatchGroup(request, reply, packLimit) takes two Uint8Arrays and a byte count");
        }
        auto array = info[index].As<Napi::Uint8Array>();
        return {array.Data(), array.ByteLength()};
      };
      const auto [request, request_length] = bytes(0);
      const auto [reply, reply_capacity] = bytes(1);
      if (!info[2].IsNumber()) throw CodedError("WEIR_BAD_ARGUMENT", "runFlatBatchGroup: packLimit must be a byte count");
      return RunFlatBatchGroup(env, request, request_length, reply, reply_capacity, info[2].As<Napi::Number>().Uint32Value());
    });
  }

  Napi::Value RunGroup(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      if (!info[0].IsObject() || !info[1].IsNumber()) {
        throw CodedError("WEIR_BAD_ARGUMENT", "runBatchGroup(message, packLimit) takes a wire message and a byte count");
      }
      return RunBatchGroup(info.Env(), info[0].As<Napi::Object>(), info[1].As<Napi::Number>().Uint32Value());
    });
  }

  // sessions() -> [{ key, modelPath, references }]
  Napi::Value Sessions(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto list = SessionRegistry::Instance().List();
    auto array = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      auto entry = Napi::Object::New(env);
      entry.Set("key", list[i].key);
      entry.Set("modelPath", list[i].model_path);
      entry.Set("references", list[i].references);
      array.Set(i, entry);
    }
    return array;
  }

  // liveSessionCount() -> sessions not yet destroyed (registered or still running)
  Napi::Value LiveSessionCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(ModelSession::LiveCount()));
  }

  // copyBytes(target, targetOffset, source): a plain memcpy. V8 copies into
  // shared memory byte by byte (relaxed atomics) when the two are not aligned
  // alike, about ten times slower for a request body.
  Napi::Value CopyBytes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guarded(env, [&]() -> Napi::Value {
      if (!info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsArrayBuffer()) {
        throw CodedError("WEIR_BAD_ARGUMENT", "copyBytes(target, targetOffset, source) takes a Uint8Array, a byte offset and an ArrayBuffer");
      }
      napi_typedarray_type type;
      size_t length = 0;
      void* data = nullptr;
      napi_get_typedarray_info(env, info[0], &type, &length, &data, nullptr, nullptr);
      const double offset = info[1].As<Napi::Number>().DoubleValue();
      auto source = info[2].As<Napi::ArrayBuffer>();
      if (type != napi_uint8_array || !(offset >= 0) || offset + static_cast<double>(source.ByteLength()) > static_cast<double>(length)) {
        throw CodedError("WEIR_BAD_ARGUMENT", "copyBytes: the source does not fit the Uint8Array target at that offset");
      }
      if (source.ByteLength() > 0) std::memcpy(static_cast<uint8_t*>(data) + static_cast<size_t>(offset), source.Data(), source.ByteLength());
      return env.Undefined();
    });
  }

  // liftJsonData(bytes: Uint8Array, scratch: Float64Array, keepUnlifted?: boolean)
  // (json_lift.h). Null when nothing was lifted (a binary request's header
  // has nothing to lift: `keepUnlifted` keeps it as a skeleton all the same).
  // Otherwise `scratch` receives
  //   [skeletonId, idStart, idEnd, inputs, start0, end0, ..., values]
  // (idStart, idEnd: the lifted id's byte span in `bytes`, or -1, -1; each
  // input's start and end index `scratch`, or -1), and the skeleton (the
  // text with each lifted array replaced by 0 and a lifted id by "") comes
  // back as a string the first time, with its id in scratch[0] (-1: too long
  // to keep), and as that id, a number, from then on. When the numbers do
  // not fit `scratch`, it returns minus the length they need and does
  // nothing else. Typed arrays per call cost more than the scan, hence the
  // caller's scratch. The bytes are read during the call only, so they may
  // be memory the caller merely borrows.
  Napi::Value LiftJsonData(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guarded(env, [&]() -> Napi::Value {
      // One napi_get_typedarray_info call each: node-addon-api's accessors would make several.
      napi_typedarray_type bytes_type, scratch_type;
      size_t bytes_length, scratch_length;
      void *bytes, *scratch;
      if (info.Length() < 2 ||
          napi_get_typedarray_info(env, info[0], &bytes_type, &bytes_length, &bytes, nullptr, nullptr) != napi_ok ||
          napi_get_typedarray_info(env, info[1], &scratch_type, &scratch_length, &scratch, nullptr, nullptr) != napi_ok ||
          bytes_type != napi_uint8_array || scratch_type != napi_float64_array) {
        throw CodedError("WEIR_BAD_ARGUMENT", "liftJsonData(bytes, scratch) takes a Uint8Array and a Float64Array");
      }
      struct TrimOnReturn {
        LiftedJson& lifted;
        ~TrimOnReturn() {
          Trim(lifted.text);
          Trim(lifted.values);
          Trim(lifted.spans);
        }
      } trim{lifted_};
      const bool keep_unlifted = info.Length() > 2 && info[2].ToBoolean().Value();
      if (!LiftInputData(std::string_view(static_cast<const char*>(bytes), bytes_length), lifted_, keep_unlifted)) {
        return env.Null();
      }
      const size_t header = 4 + lifted_.spans.size();
      const size_t needed = header + lifted_.values.size();
      if (needed > scratch_length) return Napi::Number::New(env, -static_cast<double>(needed));
      double* out = static_cast<double*>(scratch);
      int id = skeletons_.Find(lifted_.text);
      const bool known = id >= 0;
      if (!known) id = skeletons_.Add(lifted_.text);
      out[0] = id;
      out[1] = static_cast<double>(lifted_.id_start);
      out[2] = static_cast<double>(lifted_.id_end);
      out[3] = static_cast<double>(lifted_.spans.size() / 2);
      for (size_t i = 0; i < lifted_.spans.size(); ++i) {
        out[4 + i] = lifted_.spans[i] < 0 ? -1 : static_cast<double>(header + static_cast<size_t>(lifted_.spans[i]));
      }
      // A skeleton kept with nothing lifted has no values, and memcpy from a null pointer is undefined even for 0 bytes.
      if (!lifted_.values.empty()) std::memcpy(out + header, lifted_.values.data(), lifted_.values.size() * sizeof(double));
      if (known) return Napi::Number::New(env, id);
      return Napi::String::New(env, lifted_.text);
    });
  }

  // jsonNumbers(data: TypedArray): `data` as a JSON array, its numbers written
  // as String(value) writes them (json_format.h); null when one is NaN or
  // infinite, which JSON cannot hold.
  Napi::Value JsonNumbers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guarded(env, [&]() -> Napi::Value {
      // One napi_get_typedarray_info call: node-addon-api's accessors would make three.
      napi_typedarray_type type;
      size_t length;
      void* data;
      if (info.Length() < 1 || napi_get_typedarray_info(env, info[0], &type, &length, &data, nullptr, nullptr) != napi_ok) {
        throw CodedError("WEIR_BAD_ARGUMENT", "jsonNumbers(data) takes a TypedArray");
      }
      text_.clear();
      const bool written = AppendJsonArray(type, data, length, text_);
      napi_value result = nullptr;
      const napi_status status = written ? napi_create_string_latin1(env, text_.data(), text_.size(), &result) : napi_ok;
      Trim(text_);
      if (!written) return env.Null();
      NAPI_THROW_IF_FAILED(env, status, Napi::Value());
      return Napi::Value(env, result);
    });
  }

  // openDoorbell(callback) -> id; ringDoorbell(id) -> false once closed; closeDoorbell(id). See doorbell.h.
  Napi::Value OpenDoorbellJs(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      if (!info[0].IsFunction()) throw CodedError("WEIR_BAD_ARGUMENT", "openDoorbell(callback) takes a function");
      return Napi::Number::New(info.Env(), OpenDoorbell(info.Env(), info[0].As<Napi::Function>()));
    });
  }

  Napi::Value RingDoorbellJs(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), RingDoorbell(DoorbellId(info)));
  }

  Napi::Value CloseDoorbellJs(const Napi::CallbackInfo& info) {
    CloseDoorbell(DoorbellId(info));
    return info.Env().Undefined();
  }

  // waitOnWord(word: Int32Array, expected, timeoutMs); wakeWord(word). On the
  // view's first element; see wait_word.h.
  Napi::Value WaitOnWordJs(const Napi::CallbackInfo& info) {
    int32_t* word = FirstWord(info, "waitOnWord(word, expected, timeoutMs)");
    const double timeout_ms = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
    // Bounded too: a timespec built from an infinite or huge timeout would overflow.
    if (!info[1].IsNumber() || !(timeout_ms >= 0 && timeout_ms <= 1e9)) {
      throw ToJsError(info.Env(), "WEIR_BAD_ARGUMENT", "waitOnWord(word, expected, timeoutMs) takes an Int32Array, a number and a timeout from 0 to 1e9 ms");
    }
    WaitOnWord(word, info[1].As<Napi::Number>().Int32Value(), timeout_ms);
    return info.Env().Undefined();
  }

  Napi::Value WakeWordJs(const Napi::CallbackInfo& info) {
    WakeWord(FirstWord(info, "wakeWord(word)"));
    return info.Env().Undefined();
  }

  static int32_t* FirstWord(const Napi::CallbackInfo& info, const char* usage) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (info.Length() < 1 || napi_get_typedarray_info(info.Env(), info[0], &type, &length, &data, nullptr, nullptr) != napi_ok ||
        type != napi_int32_array || length == 0) {
      throw ToJsError(info.Env(), "WEIR_BAD_ARGUMENT", std::string(usage) + " takes a non-empty Int32Array");
    }
    return static_cast<int32_t*>(data);
  }

  static uint32_t DoorbellId(const Napi::CallbackInfo& info) {
    if (!info[0].IsNumber()) throw ToJsError(info.Env(), "WEIR_BAD_ARGUMENT", "a doorbell's id must be a number");
    return info[0].As<Napi::Number>().Uint32Value();
  }

 private:
  // Kept between calls (one addon instance per thread), so that their buffers are reused.
  LiftedJson lifted_;
  SkeletonIds skeletons_;
  std::string text_;
};

NODE_API_ADDON(WeirAddon)
