// Horizontal bar charts as SVG built node by node (no inline style, no library).

import { s } from './dom.js';
import { int, pct } from './format.js';

const ROW = 26;
const LABEL = 190;
const WIDTH = 640;
const BAR = WIDTH - LABEL - 130;

/**
 * One bar per `[label, value]`, scaled to the largest value (or to `total`), labelled with the
 * count and its share of `total`. `seriesClass(i)` picks each bar's colour class.
 */
export function barChart(entries, { total, title, seriesClass = () => 'bar' } = {}) {
  const max = Math.max(1, total || 0, ...entries.map(([, v]) => v));
  const sum = total || entries.reduce((a, [, v]) => a + v, 0);
  const height = Math.max(1, entries.length) * ROW + 4;
  const svg = s('svg', {
    class: 'chart',
    viewBox: `0 0 ${WIDTH} ${height}`,
    role: 'img',
    'aria-label': title || 'bar chart',
    preserveAspectRatio: 'xMinYMin meet',
  });
  if (title) svg.append(s('title', {}, title));
  entries.forEach(([label, value], i) => {
    const y = i * ROW + 2;
    const w = Math.max(value > 0 ? 2 : 0, Math.round((BAR * value) / max));
    svg.append(
      s('text', { x: LABEL - 8, y: y + 17, 'text-anchor': 'end', class: 'chart-label' }, label),
      s('rect', { x: LABEL, y: y + 4, width: w, height: ROW - 8, rx: 2, class: seriesClass(i) }),
      s('text', { x: LABEL + w + 6, y: y + 17, class: 'chart-value' }, `${int(value)} (${pct(value, sum)})`),
    );
  });
  return svg;
}
