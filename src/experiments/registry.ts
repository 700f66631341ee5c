import { avcTrain } from "./avc-train";
import { quickstart } from "./quickstart";
import type { ConfigObject, Experiment } from "./types";

/**
 * Every named experiment, registered in this one place. Each lives in its own file with typed
 * defaults and a run function.
 */
export const experiments: Record<string, Experiment<ConfigObject>> = {
  quickstart: quickstart as unknown as Experiment<ConfigObject>,
  "avc-train": avcTrain as unknown as Experiment<ConfigObject>,
};
