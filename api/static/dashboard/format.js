// Words, times and durations as the incident room reads them. Pure functions, no DOM.

export const STATUS = {
  MAJOR_OUTAGE: { label: "Major outage", mark: "✖", rank: 0 },
  PARTIAL_OUTAGE: { label: "Partial outage", mark: "◆", rank: 1 },
  DEGRADED_PERFORMANCE: { label: "Degraded", mark: "▲", rank: 2 },
  UNDER_MAINTENANCE: { label: "Maintenance", mark: "■", rank: 3 },
  OPERATIONAL: { label: "Operational", mark: "✔", rank: 4 },
};

export const PHASES = ["ISOLATED", "ASSESSING", "RESTORING", "VALIDATING", "RESTORED"];

export const CLOCK = {
  OVERDUE: "Overdue",
  PENDING: "Pending",
  FILED_LATE: "Filed late",
  FILED_ON_TIME: "Filed on time",
  NOT_REQUIRED: "Not required",
};

export function words(constant) {
  if (!constant) return "";
  const text = constant.toLowerCase().replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function statusLabel(status) {
  return (STATUS[status] || { label: words(status) }).label;
}

const dateTime = new Intl.DateTimeFormat("en-GB", {
  day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
});
const shortDate = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "2-digit" });
const clockTime = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export const formatDateTime = (iso) => (iso ? dateTime.format(new Date(iso)) : "");
export const formatShortDate = (iso) => (iso ? shortDate.format(new Date(iso)) : "");
export const formatClockTime = (date) => clockTime.format(date);

// "3 d 4 h", "2 h 05 m", "12 m": the two largest units, enough to act on.
export function duration(seconds) {
  let rest = Math.round(Math.abs(seconds) / 60);
  const units = [["y", 525600], ["d", 1440], ["h", 60], ["m", 1]];
  const parts = [];
  for (const [name, size] of units) {
    if (rest >= size || (name === "m" && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

export function relative(iso, now) {
  const seconds = (new Date(iso) - now) / 1000;
  return seconds >= 0 ? `in ${duration(seconds)}` : `${duration(seconds)} ago`;
}

export function slip(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds === 0) return "on first date";
  return `${seconds > 0 ? "+" : "−"}${duration(seconds)}`;
}

// A regulatory clock as of `now`: what state it is in and the one line that matters.
export function clockReading(obligation, now) {
  const due = obligation.dueAt ? new Date(obligation.dueAt) : null;
  const filed = obligation.filedAt ? new Date(obligation.filedAt) : null;
  let state = obligation.state;
  if (state === "PENDING" && due && due < now) state = "OVERDUE"; // the clock ran out since the read
  if (state === "NOT_REQUIRED") {
    return { state, line: "No notification needed" };
  }
  if (filed) {
    if (!due) return { state, line: "Filed; no fixed deadline" };
    const margin = (due - filed) / 1000;
    return { state, line: margin >= 0 ? `Filed ${duration(margin)} before deadline` : `Filed ${duration(margin)} late` };
  }
  if (!due) return { state, line: "No fixed deadline: notify promptly" };
  const left = (due - now) / 1000;
  return { state, line: left >= 0 ? `${duration(left)} left` : `Overdue by ${duration(left)}` };
}

export const CLOCK_ORDER = ["OVERDUE", "PENDING", "FILED_LATE", "FILED_ON_TIME", "NOT_REQUIRED"];
