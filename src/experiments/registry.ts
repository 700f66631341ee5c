import { ablationFusion } from "./ablation-fusion";
import { avcTrain } from "./avc-train";
import { esc50Probe } from "./esc50-probe";
import { kineticsProbe } from "./kinetics-probe";
import { localization } from "./localization";
import { quickstart } from "./quickstart";
import type { ConfigObject, Experiment } from "./types";

const asExperiment = (e: unknown) => e as Experiment<ConfigObject>;

/**
 * Every named experiment, registered in this one place. Each lives in its own file with typed
 * defaults and a run function.
 */
export const experiments: Record<string, Experiment<ConfigObject>> = {
  quickstart: asExperiment(quickstart),
  "avc-train": asExperiment(avcTrain),
  "kinetics-probe": asExperiment(kineticsProbe),
  "esc50-probe": asExperiment(esc50Probe),
  localization: asExperiment(localization),
  "ablation-fusion": asExperiment(ablationFusion),
};
