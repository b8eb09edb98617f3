/**
 * The few choices every panel of the dashboard shares, made once on top of
 * Grafana's own builders (`@grafana/grafana-foundation-sdk`): the Prometheus
 * datasource is the `datasource` variable, queries are PromQL in code mode
 * with their refIds in order, time series are thin lines with a list legend,
 * and a limit is a red threshold drawn as a dashed line.
 */
import {
  GraphThresholdsStyleConfigBuilder,
  GraphThresholdsStyleMode,
  LegendDisplayMode,
  LegendPlacement,
  ReduceDataOptionsBuilder,
  SortOrder,
  TooltipDisplayMode,
  VisibilityMode,
  VizLegendOptionsBuilder,
  VizTooltipOptionsBuilder
} from "@grafana/grafana-foundation-sdk/common"
import {
  type DataSourceRef,
  FieldColorBuilder,
  FieldColorModeId,
  type Threshold,
  ThresholdsConfigBuilder,
  ThresholdsMode
} from "@grafana/grafana-foundation-sdk/dashboard"
import { PanelBuilder as GaugePanelBuilder } from "@grafana/grafana-foundation-sdk/gauge"
import { DataqueryBuilder, QueryEditorMode } from "@grafana/grafana-foundation-sdk/prometheus"
import { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries"

/** Every panel's and target's datasource: whatever the `datasource` variable is set to. */
export const datasource: DataSourceRef = { type: "prometheus", uid: "${datasource}" }

/** One PromQL query of a panel: its expression, legend, and whether it asks for exemplars (links to traces). */
export interface Query {
  readonly expr: string
  readonly legend: string
  readonly exemplar?: boolean
}

/** Where a panel turns red: from `value` up, or below it with `below`. */
export interface Limit {
  readonly value: number
  readonly below?: boolean
}

/** What every panel has: a title, what it shows, a Grafana unit and its queries. */
export interface Basics {
  readonly title: string
  readonly description: string
  readonly unit: string
  readonly queries: ReadonlyArray<Query>
  /** The axis or gauge bounds; the lower one is 0 unless said otherwise (`null`: none). */
  readonly min?: number | null
  readonly max?: number
  readonly red?: Limit
}

/** The queries as Prometheus targets A, B, C… in order. */
const targets = (queries: ReadonlyArray<Query>) =>
  queries.map((query, i) =>
    new DataqueryBuilder()
      .refId(String.fromCharCode(65 + i))
      .datasource(datasource)
      .expr(query.expr)
      .legendFormat(query.legend)
      .range()
      .editorMode(QueryEditorMode.Code)
      .exemplar(query.exemplar ?? false)
  )

const steps = (limit: Limit | undefined): Array<Threshold> =>
  limit === undefined ? [{ color: "green", value: null }] : limit.below ?
  [{ color: "red", value: null }, { color: "green", value: limit.value }] :
  [{ color: "green", value: null }, { color: "red", value: limit.value }]

/** The settings both kinds of panel share, on either builder. */
const basics = <P extends TimeseriesPanelBuilder | GaugePanelBuilder>(panel: P, spec: Basics): P => {
  panel
    .title(spec.title)
    .description(spec.description)
    .datasource(datasource)
    .unit(spec.unit)
    .thresholds(new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(steps(spec.red)))
    .targets(targets(spec.queries))
    .span(8)
    .height(8)
  const min = spec.min === undefined ? 0 : spec.min
  if (min !== null) panel.min(min)
  if (spec.max !== undefined) panel.max(spec.max)
  return panel
}

/** A time series panel of `spec`, its limit (if any) a dashed red line. */
export const timeseries = (spec: Basics): TimeseriesPanelBuilder =>
  basics(new TimeseriesPanelBuilder(), spec)
    .colorScheme(new FieldColorBuilder().mode(FieldColorModeId.PaletteClassic))
    .lineWidth(1)
    .fillOpacity(10)
    .showPoints(VisibilityMode.Never)
    .spanNulls(false)
    .thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(
      spec.red === undefined ? GraphThresholdsStyleMode.Off : GraphThresholdsStyleMode.Dashed
    ))
    .legend(
      new VizLegendOptionsBuilder().displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom).showLegend(true)
    )
    .tooltip(new VizTooltipOptionsBuilder().mode(TooltipDisplayMode.Multi).sort(SortOrder.Descending))

/** A gauge of each series' last value, coloured by its limit. */
export const gauge = (spec: Basics): GaugePanelBuilder =>
  basics(new GaugePanelBuilder(), spec)
    .colorScheme(new FieldColorBuilder().mode(FieldColorModeId.Thresholds))
    .reduceOptions(new ReduceDataOptionsBuilder().values(false).calcs(["lastNotNull"]).fields(""))
    .showThresholdLabels(false)
    .showThresholdMarkers(true)

/** A share from 0 to 1 of one recorded ratio, red on the wrong side of `limit`. */
export const ratio = (title: string, description: string, query: Query, limit: Limit): TimeseriesPanelBuilder =>
  timeseries({ title, description, unit: "percentunit", max: 1, red: limit, queries: [query] })
