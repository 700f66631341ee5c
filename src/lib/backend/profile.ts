import * as tf from "@tensorflow/tfjs";

/** Time spent in one kernel over a profiled run. */
export interface KernelTiming {
  kernel: string;
  calls: number;
  /** Wall-clock milliseconds. */
  ms: number;
  /** CPU milliseconds of the whole process (all threads) while the kernel ran. */
  cpuMs: number;
}

/**
 * Runs `fn` with every kernel registered for `backendName` wrapped in wall-clock and CPU timers and
 * returns the totals per kernel, slowest first. Meant for synchronous backends (cpu, wasm), whose
 * kernels finish before they return; composite kernels count their inner work under their own
 * name. The original kernels are restored afterwards, also when `fn` throws.
 */
export async function timeKernels<T>(backendName: string, fn: () => T | Promise<T>): Promise<{ result: T; kernels: KernelTiming[] }> {
  const totals = new Map<string, KernelTiming>();
  const originals = tf.getKernelsForBackend(backendName);
  for (const config of originals) {
    const inner = config.kernelFunc;
    const entry: KernelTiming = { kernel: config.kernelName, calls: 0, ms: 0, cpuMs: 0 };
    totals.set(config.kernelName, entry);
    tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel({
      ...config,
      kernelFunc: (args) => {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        try {
          return inner(args);
        } finally {
          const c = process.cpuUsage(c0);
          entry.calls++;
          entry.ms += performance.now() - t0;
          entry.cpuMs += (c.user + c.system) / 1000;
        }
      },
    });
  }
  try {
    const result = await fn();
    const kernels = [...totals.values()].filter((k) => k.calls > 0).sort((a, b) => b.ms - a.ms);
    return { result, kernels };
  } finally {
    for (const config of originals) {
      tf.unregisterKernel(config.kernelName, backendName);
      tf.registerKernel(config);
    }
  }
}
