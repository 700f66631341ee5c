/**
 * Plotly figures and HTML for notebooks (tslab) and static pages. Builders take plain typed data
 * and return a {@link Figure}; `show` displays it in a notebook (plotly.js sent once per kernel
 * session), `saveHtml` writes an offline page.
 *
 * ```ts
 * import { show, learningCurves, readMetricsJsonl } from "l3kit";
 * show(learningCurves(await readMetricsJsonl("runs/avc/metrics.jsonl")));
 * ```
 */
export {
  type AblationRow,
  ablationBars,
  type ConfusionMatrixOptions,
  confusionMatrixFigure,
  type LabelEfficiencyPoint,
  labelEfficiencyFigure,
  perClassBars,
} from "./charts";
export {
  type LearningCurveRow,
  type LearningCurvesOptions,
  type LiveLearningCurves,
  learningCurves,
  liveLearningCurves,
} from "./curves";
export {
  currentDisplaySink,
  inNotebook,
  LiveFigure,
  loadPlotly,
  plotlyLoaderSent,
  setDisplaySink,
  show,
  type VizDisplay,
  type VizDisplaySink,
} from "./display";
export { type Displayable, escapeHtml, type Figure, isFigure, type PlotTrace } from "./figure";
export {
  type FrameGridOptions,
  frameGrid,
  type LocalizationOverlayInput,
  localizationOverlay,
  type VizMap,
} from "./images";
export { figureHtml, type FigureHtmlOptions, type PlotlyEmbed, pageHtml, plotlyBundle, plotlyLoaderHtml, saveHtml } from "./plotly";
export { encodePng, pngDataUri, shrinkImage, type VizImage } from "./png";
export { type SpectrogramInput, type SpectrogramOptions, spectrogramFigure } from "./spectrogram";
export { type ColumnsTable, type TableHtmlOptions, tableHtml } from "./table";
export { audioPlayer, encodeWav } from "./wav";
