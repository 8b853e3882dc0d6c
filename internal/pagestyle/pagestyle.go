// Package pagestyle is the one stylesheet of the HTML pages people see
// while they connect an app: the authorization server's consent and error
// pages, and the development identity provider's sign-in page. One look
// across the sign-in, light or dark as the browser prefers
// (prefers-color-scheme), and nothing to load: pages inline CSS in a
// <style> element, which their Content-Security-Policy allows with
// style-src 'unsafe-inline' and nothing else.
package pagestyle

// CSS is the stylesheet, to inline in a page's <style> element. Besides
// the elements it styles main (the card), h1, .sub (the line under the
// title), dl, .warn (a note to read before going on), .error (a message
// about what the user entered), .actions with button and button.primary,
// label and text inputs with .hint, details/summary (what most people
// need not read), and footer. Text keeps at least WCAG AA contrast in
// both schemes (the primary button's label is dark on the lighter accent
// of dark mode).
const CSS = `
:root { color-scheme: light dark; --fg:#1d2330; --muted:#5b6475; --bg:#f5f6f8; --card:#fff; --line:#d9dde4; --accent:#1f5fd6; --warn:#8a5a00; --warnbg:#fff4d6; --bad:#b3261e; --onaccent:#fff; }
@media (prefers-color-scheme: dark) { :root { --fg:#e8ebf0; --muted:#a7afbd; --bg:#14171c; --card:#1d2128; --line:#323844; --accent:#6ea0ff; --warn:#ffd27a; --warnbg:#3a2f12; --bad:#ff8a80; --onaccent:#0b1220; } }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
main { max-width: 34rem; margin: 3rem auto; padding: 2rem; background:var(--card); border:1px solid var(--line); border-radius: 12px; }
h1 { font-size: 1.35rem; margin: 0 0 .25rem; }
.sub { color:var(--muted); margin:0 0 1.5rem; }
dl { margin: 0 0 1.25rem; } dt { font-weight:600; margin-top:.75rem; } dd { margin:.15rem 0 0; overflow-wrap:anywhere; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, monospace; }
ul { padding-left: 1.2rem; margin:.25rem 0 0; }
.warn { background:var(--warnbg); color:var(--warn); border-radius:8px; padding:.75rem 1rem; margin: 0 0 1.25rem; }
.error { color:var(--bad); margin:.35rem 0 0; }
label { display:block; font-weight:600; margin:1rem 0 .3rem; }
input[type=text], input[type=email] { width:100%; font: inherit; padding:.55rem .75rem; border-radius:8px; border:1px solid var(--line); background:var(--bg); color:var(--fg); }
input[aria-invalid=true] { border-color:var(--bad); }
.hint { color:var(--muted); font-size:.85rem; font-weight:400; margin:.3rem 0 0; }
.actions { display:flex; gap:.75rem; margin-top:1.5rem; }
button { font: inherit; padding:.6rem 1.4rem; border-radius:8px; border:1px solid var(--line); background:transparent; color:var(--fg); cursor:pointer; }
button.primary { background:var(--accent); border-color:var(--accent); color:var(--onaccent); }
button:focus-visible, input:focus-visible, summary:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
details { color:var(--muted); font-size:.85rem; margin-top:1.5rem; } summary { cursor:pointer; } details dl { margin:.5rem 0 0; }
footer { color:var(--muted); font-size:.85rem; margin-top:1.5rem; }
`
