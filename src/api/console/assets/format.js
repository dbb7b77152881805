// How numbers, durations and times read on the pages. Schedules are Beijing time (UTC+8, no
// daylight saving), as Getui's own console shows them; each time is also shown in local time.

const BEIJING_OFFSET_MS = 8 * 3600 * 1000;

export const int = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'));

export const rate = (r) => (r ? `${Number(r).toFixed(r < 10 ? 1 : 0)}/s` : '—');

export function pct(part, whole) {
  if (!whole) return '—';
  return `${((100 * part) / whole).toFixed(1)}%`;
}

export function eta(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

const pad = (n) => String(n).padStart(2, '0');

/** `YYYY-MM-DD HH:MM` of an instant in Beijing time. */
export function beijing(date) {
  const b = new Date(date.getTime() + BEIJING_OFFSET_MS);
  return `${b.getUTCFullYear()}-${pad(b.getUTCMonth() + 1)}-${pad(b.getUTCDate())} ${pad(b.getUTCHours())}:${pad(
    b.getUTCMinutes(),
  )}`;
}

/** `YYYY-MM-DD HH:MM` of an instant in this browser's time zone, with the zone's offset. */
export function local(date) {
  const off = -date.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const zone = `UTC${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(
    date.getMinutes(),
  )} (${zone})`;
}

/** An RFC 3339 time as "Beijing … · local …", or a dash. */
export function when(rfc3339) {
  if (!rfc3339) return '—';
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339;
  return `${beijing(d)} Beijing · ${local(d)} local`;
}

/** A `datetime-local` value read as Beijing time → RFC 3339 with the +08:00 offset. */
export function beijingInputToRfc3339(value) {
  if (!value) return null;
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  return `${withSeconds}+08:00`;
}

/** The instant of such an input value, or null. */
export function beijingInputToDate(value) {
  const rfc = beijingInputToRfc3339(value);
  if (!rfc) return null;
  const d = new Date(rfc);
  return Number.isNaN(d.getTime()) ? null : d;
}

export const FINAL_STATES = ['completed', 'cancelled', 'failed'];
export const STATES = ['draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled', 'failed'];
