/** Served by us, so the pages need nothing from the internet and the CSP allows only 'self'. */
export const consoleCss = `
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #fafafa; }
header { background: #23395d; color: #fff; padding: 0.6rem 1rem; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
header a { color: #fff; }
header button { color: #fff; background: transparent; border: 1px solid #fff; }
header nav { display: flex; gap: 1rem; flex: 1; }
header form { margin: 0; }
main { padding: 1rem; max-width: 72rem; }
form[role=search] { margin-bottom: 1rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #eef1f6; }
code, .digest { font-family: ui-monospace, monospace; font-size: 0.9em; word-break: break-all; }
label { display: block; margin: 0.5rem 0 0.2rem; }
input[type=text], input[type=password], input[type=search] { padding: 0.3rem; min-width: 16rem; }
button { padding: 0.3rem 0.8rem; cursor: pointer; }
button.danger { background: #a4161a; color: #fff; border: 1px solid #660708; }
.error { color: #a4161a; font-weight: bold; }
.notice { background: #e7f5e9; border: 1px solid #5c9b63; padding: 0.5rem; }
.pager { display: flex; gap: 1rem; margin: 0.8rem 0; }
pre.pull { background: #fff; border: 1px solid #ccc; padding: 0.5rem; display: inline-block; }
`;

export const consoleJs = `
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  });
}
`;

export const contentSecurityPolicy =
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'";
