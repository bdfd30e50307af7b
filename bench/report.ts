/** Prints the result table and writes the machine-readable result file. */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { misses, type Row } from './results.js';

/** What the numbers were measured on. */
export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly platform: string;
  /** 1-minute load average when the run started and when it ended: other work on the machine skews every number. */
  readonly loadAverage: { readonly start: number; readonly end: number };
}

/** The 1-minute load average now. */
export function load(): number {
  return loadavg()[0] ?? Number.NaN;
}

/** This machine, for the result file; `loadAtStart` is {@link load} when the run began. */
export function machine(loadAtStart: number): Machine {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverage: { start: loadAtStart, end: load() },
  };
}

function format(value: number | undefined, unit: string): string {
  if (value === undefined) return '';
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  const digits =
    unit === 'count' || magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3;
  return value.toFixed(digits);
}

function comparison(
  row: Row,
  compared: { readonly kind: 'ratio' | 'added'; readonly value: number } | undefined,
): string {
  if (compared === undefined) return '';
  const { kind, value } = compared;
  return kind === 'ratio'
    ? `x ${value.toFixed(2)}`
    : `${value >= 0 ? '+' : ''}${format(value, row.unit)} ${row.unit}`;
}

/** The targets, the one against stunnel marked as such. */
function targets(row: Row): string {
  const floor = row.floor?.target && `${row.floor.target.text} vs stunnel`;
  return [row.target?.text, floor].filter(Boolean).join('; ');
}

/** The table as Markdown (readable in a terminal, pasteable into docs/performance.md). */
export function table(rows: readonly Row[]): string {
  const header = [
    'measurement',
    'unit',
    'direct',
    'stunnel',
    'proxy',
    'proxy vs direct',
    'proxy vs stunnel',
    'target',
    'met',
  ];
  const lines = rows.map((row) => [
    row.label,
    row.unit,
    format(row.direct, row.unit),
    format(row.floor?.stunnel, row.unit),
    format(row.proxy, row.unit),
    comparison(row, row.comparison),
    comparison(row, row.floor),
    targets(row),
    row.target === undefined && row.floor?.target === undefined ? '' : misses(row) ? 'NO' : 'yes',
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => line[column]!.length)),
  );
  const render = (cells: string[]): string =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [
    render(header),
    render(widths.map((width) => '-'.repeat(width))),
    ...lines.map(render),
  ].join('\n');
}

/** `bench/results/latest.json`: one run, every row with its target and whether it was met. */
export interface ResultFile {
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly machine: Machine;
  readonly settings: object;
  readonly rows: readonly Row[];
}

/** Writes the result file, creating its directory. */
export async function writeResults(path: string, result: ResultFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const rows = result.rows.map((row) => ({
    ...row,
    target: row.target?.text,
    floor: row.floor && { ...row.floor, target: row.floor.target?.text },
    met: row.target === undefined && row.floor?.target === undefined ? undefined : !misses(row),
  }));
  await writeFile(path, `${JSON.stringify({ ...result, rows }, null, 2)}\n`);
}
