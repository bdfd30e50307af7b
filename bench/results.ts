/**
 * One line of the benchmark's result: what was measured, on each route, and the number the
 * issue's target is stated on (a proxy/direct ratio, an added cost, or an absolute figure).
 */

/** A goal from issue 7, stated on {@link Row.judged}. */
export interface Target {
  /** As printed, e.g. `>= 0.90`. */
  readonly text: string;
  readonly met: (value: number) => boolean;
}

export interface Row {
  /** Stable key for the JSON file and for comparing runs. */
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly direct?: number;
  readonly proxy: number;
  /** How the proxy compares with direct: `ratio` (proxy/direct) or `added` (proxy - direct). */
  readonly comparison?: { readonly kind: 'ratio' | 'added'; readonly value: number };
  readonly target?: Target;
  /** The value the target applies to: the comparison when there is one, else the proxy's figure. */
  readonly judged?: number;
  /** The same measurement through stunnel (the floor for a TLS-unwrapping hop), and the proxy against it. */
  readonly floor?: Floor;
  readonly note?: string;
}

/** A row's figure through stunnel, how the proxy compares with it, and the target on that. */
export interface Floor {
  readonly stunnel: number;
  readonly kind: 'ratio' | 'added';
  /** proxy/stunnel (the median of per-pair ratios), or proxy - stunnel. */
  readonly value: number;
  readonly target?: Target;
}

/** A value must be at least `limit`. */
export const atLeast = (limit: number, digits = 2): Target => ({
  text: `>= ${limit.toFixed(digits)}`,
  met: (value) => value >= limit,
});
/** A value must be at most `limit`. */
export const atMost = (limit: number, digits = 2): Target => ({
  text: `<= ${limit.toFixed(digits)}`,
  met: (value) => value <= limit,
});
/** A value must stay under `limit`. */
export const below = (limit: number, digits = 2): Target => ({
  text: `< ${limit.toFixed(digits)}`,
  met: (value) => value < limit,
});
/** A count must be exactly `wanted`. */
export const exactly = (wanted: number): Target => ({
  text: `= ${wanted}`,
  met: (value) => value === wanted,
});

/** Whether the row has a target and misses it. */
export function misses(row: Row): boolean {
  return missesDirect(row) || missesFloor(row);
}

function missesDirect(row: Row): boolean {
  if (row.target === undefined) return false;
  const value = row.judged ?? row.comparison?.value ?? row.proxy;
  return !(Number.isFinite(value) && row.target.met(value));
}

function missesFloor(row: Row): boolean {
  const floor = row.floor;
  if (floor?.target === undefined) return false;
  return !(Number.isFinite(floor.value) && floor.target.met(floor.value));
}

/** The row with `stunnel`'s figure as its floor; `value` defaults as in {@link compared}. */
export function withFloor(
  row: Row,
  stunnel: number,
  target?: Target,
  value = row.comparison?.kind === 'added' ? row.proxy - stunnel : row.proxy / stunnel,
): Row {
  const kind = row.comparison?.kind ?? 'ratio';
  return { ...row, floor: { stunnel, kind, value, ...(target && { target }) } };
}

/**
 * A row comparing both routes: `ratio` is proxy/direct unless `value` gives another (the median of
 * per-pair ratios); `added` is proxy - direct. A target then applies to that comparison.
 */
export function compared(
  fields: Omit<Row, 'comparison' | 'judged'> & { readonly direct: number },
  kind: 'ratio' | 'added',
  value = kind === 'ratio' ? fields.proxy / fields.direct : fields.proxy - fields.direct,
): Row {
  return { ...fields, comparison: { kind, value }, ...(fields.target && { judged: value }) };
}
