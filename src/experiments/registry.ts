import { ablationFusion } from "./ablation-fusion";
import { avcTrain } from "./avc-train";
import { esc50Probe } from "./esc50-probe";
import { kineticsProbe } from "./kinetics-probe";
import { localization } from "./localization";
import { quickstart } from "./quickstart";
import type { defineExperiment } from "./define";
import type { Experiment } from "./types";

/**
 * Every named experiment, registered in this one place. Each lives in its own file, declared with
 * {@link defineExperiment}: a config schema, profiles and typed run functions.
 */
export const experiments: Record<string, Experiment> = {
  quickstart,
  "avc-train": avcTrain,
  "kinetics-probe": kineticsProbe,
  "esc50-probe": esc50Probe,
  localization,
  "ablation-fusion": ablationFusion,
};
