/** The page's only style sheet, served by the daemon itself (/static/page.css). */
export const PAGE_CSS = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #dde1e8; --bg: #f4f6f9;
  --card: #fff; --accent: #1f5fbf; --ok: #1a7f4b; --warn: #a15c00; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.top { display: flex; justify-content: space-between; align-items: center; gap: 1rem;
  padding: 1rem max(1rem, calc((100% - 46rem) / 2)); background: var(--card); border-bottom: 1px solid var(--line); }
.top h1 { font-size: 1.15rem; margin: 0; letter-spacing: .01em; }
.top .sub { margin: 0; color: var(--muted); font-size: .9rem; }
main { max-width: 46rem; margin: 1.25rem auto; padding: 0 1rem; }
footer { max-width: 46rem; margin: 0 auto 2rem; padding: 0 1rem; color: var(--muted); font-size: .85rem; }
.account { background: var(--card); border: 1px solid var(--line); border-left: 4px solid var(--line);
  border-radius: 8px; padding: 1rem 1.25rem; margin-bottom: 1rem; box-shadow: 0 1px 2px rgba(20, 30, 50, .04); }
.account.narrow { max-width: 30rem; margin: 2rem auto; border-left-color: var(--accent); }
.account.narrow h2 { margin-bottom: .75rem; }
.account h2 { font-size: 1.05rem; margin: 0; overflow-wrap: anywhere; }
.account-head { display: flex; justify-content: space-between; align-items: center; gap: .75rem; flex-wrap: wrap; }
.badge { font-size: .8rem; font-weight: 600; padding: .15rem .6rem; border-radius: 999px; background: #eef0f4; color: var(--muted); white-space: nowrap; }
.state-active, .state-expired { border-left-color: var(--ok); }
.state-active .badge, .state-expired .badge { background: #e3f4ea; color: var(--ok); }
.state-pending, .state-authorised-unsaved { border-left-color: var(--warn); }
.state-pending .badge, .state-authorised-unsaved .badge { background: #fdf0dc; color: var(--warn); }
.state-none, .state-needs-reauthorisation { border-left-color: var(--bad); }
.state-none .badge, .state-needs-reauthorisation .badge { background: #fbe7e6; color: var(--bad); }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: .25rem 1.5rem; margin: .75rem 0; }
.facts div { min-width: 0; }
.facts dt { font-size: .75rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.next { margin: .5rem 0 .75rem; }
.steps { padding-left: 1.25rem; margin: 0; }
.steps li { margin: .5rem 0; }
.stack { display: flex; flex-direction: column; gap: .35rem; margin-top: .25rem; }
label { font-weight: 600; font-size: .9rem; }
input[type=password], textarea { font: inherit; width: 100%; padding: .5rem .6rem; border: 1px solid #b9c0cc; border-radius: 6px; background: #fff; color: var(--ink); }
textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; resize: vertical; }
input:focus, textarea:focus, button:focus, .button:focus { outline: 3px solid rgba(31, 95, 191, .35); outline-offset: 1px; }
.help { margin: 0 0 .4rem; color: var(--muted); font-size: .85rem; }
button, .button { display: inline-block; font: inherit; font-weight: 600; font-size: .95rem; padding: .5rem 1rem; border-radius: 6px;
  border: 1px solid var(--accent); background: var(--accent); color: #fff; text-decoration: none; cursor: pointer; text-align: center; }
.stack button { align-self: flex-start; }
button.quiet { background: transparent; color: var(--accent); }
.flash { padding: .75rem 1rem; border-radius: 6px; margin-bottom: 1rem; border: 1px solid; }
.flash-ok { background: #e3f4ea; border-color: #b4dfc5; color: #0f5132; }
.flash-error { background: #fbe7e6; border-color: #f1bcb8; color: #7a1a14; }
.device { display: flex; gap: 1.5rem; align-items: center; flex-wrap: wrap; }
.device-text p { margin: .25rem 0; }
.user-code { font: 700 2rem/1.2 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; letter-spacing: .12em; }
.qr { margin: 0; text-align: center; }
.qr svg { width: 11rem; height: 11rem; display: block; }
.qr figcaption { font-size: .8rem; color: var(--muted); max-width: 11rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; background: #eef0f4; padding: .05rem .3rem; border-radius: 4px; }
.empty { color: var(--muted); }
@media (max-width: 30rem) { .top { flex-direction: column; align-items: flex-start; } .account { padding: .9rem; } .stack button, .steps .button { width: 100%; } }
`;
