// A horizontal bar chart of msgs/s as a standalone SVG, so docs/benchmarks.md carries its plot
// without a plotting dependency.
import { normalize, round, type BenchRow } from './report.js';

const ROW_HEIGHT_PX = 22;
const LABEL_WIDTH_PX = 330;
const BAR_WIDTH_PX = 460;

const escapeXml = (s: string): string =>
  s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] ?? c);

export function renderBarChartSvg(results: Array<{ program: string; rows: BenchRow[] }>, peerRows: BenchRow[]): string {
  const bars = [
    // The floor rows (bench/remote-floor.ts) are no broker: they keep their own label.
    ...results.flatMap(({ rows }) =>
      rows.map((r) => ({ ...normalize(r, String(r.system ?? '').startsWith('floor') ? '' : 'wharf '), peer: false })),
    ),
    ...peerRows.map((r) => ({ ...normalize(r), peer: true })),
  ].filter((b) => b.msgsPerSec !== null && b.msgsPerSec > 0);
  const max = Math.max(1, ...bars.map((b) => b.msgsPerSec ?? 0));
  // Log scale: peers and Wharf differ by orders of magnitude; a linear axis hides the small bars.
  const scale = (v: number): number => (Math.log10(Math.max(1, v)) / Math.log10(max)) * BAR_WIDTH_PX;
  const height = 40 + bars.length * ROW_HEIGHT_PX;
  const width = LABEL_WIDTH_PX + BAR_WIDTH_PX + 110;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(
    `<text x="10" y="20" font-size="14" font-weight="bold">msgs/s (log scale) — Wharf in blue, peers in grey</text>`,
  );
  bars.forEach((b, i) => {
    const y = 32 + i * ROW_HEIGHT_PX;
    const w = Math.max(1, scale(b.msgsPerSec ?? 0));
    out.push(
      `<text x="${LABEL_WIDTH_PX - 6}" y="${y + 14}" text-anchor="end">${escapeXml(b.label.slice(0, 52))}</text>`,
    );
    out.push(
      `<rect x="${LABEL_WIDTH_PX}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW_HEIGHT_PX - 6}" fill="${b.peer ? '#999' : '#2b6cb0'}"/>`,
    );
    out.push(`<text x="${LABEL_WIDTH_PX + w + 4}" y="${y + 14}">${round(b.msgsPerSec ?? 0)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
