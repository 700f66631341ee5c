/**
 * Backend selection (native TensorFlow → threaded wasm → cpu) and the kernels that make the wasm
 * backend train conv nets fast.
 */
export {
  BACKEND_NAMES,
  type BackendInfo,
  type BackendName,
  backendInfo,
  formatBackendInfo,
  type InitBackendOptions,
  initBackend,
  nativePackageProblem,
  parseBackendName,
} from "./select";
export { type KernelTiming, timeKernels } from "./profile";
export { type AdamCoefficients, type AdamSlots, wasmAdamAvailable, wasmAdamUpdate } from "./wasm-adam";
export {
  type InnerTiming,
  registeredWasmTrainingKernels,
  registerWasmTrainingKernels,
  traceWasmKernelInternals,
  WASM_TRAINING_KERNELS,
  type WasmTrainingKernel,
} from "./wasm-kernels";
export { registerThreadedWasm, type WasmThreadsPlan, wasmPthreadState } from "./wasm-threads";
