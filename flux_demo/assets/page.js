// Small behaviours of the page. `window.fluxDemoToastTitles` ({language: {kind: heading}}) is set by the
// app (ui/app.py) from the message catalog.
(() => {
  if (window.__fluxDemoPage) return;
  window.__fluxDemoPage = true;

  // Notes are about the tab they came from (a snapped size, restored settings): switching tabs closes
  // the information pop-ups. Warnings and errors stay until they time out or are closed.
  document.addEventListener(
    "click",
    (event) => {
      if (!event.target.closest?.("gradio-app [role=tab]")) return;
      for (const close of document.querySelectorAll(".toast-body.info [data-testid=toast-close]")) close.click();
    },
    true,
  );

  // Gradio heads a pop-up with its kind in English ("Info", "Warning"): say it in the page's language,
  // chosen as the server chooses it (the first of the browser's languages that the app speaks).
  const titles = window.fluxDemoToastTitles || {};
  const language = navigator.languages.map((tag) => tag.toLowerCase().split("-")[0]).find((tag) => tag === "en" || tag in titles);
  const words = titles[language];
  if (!words) return;
  new MutationObserver(() => {
    for (const title of document.querySelectorAll(".toast-title")) {
      const kind = [...title.classList].find((name) => name in words);
      const text = title.firstChild;
      if (kind && text?.nodeType === Node.TEXT_NODE && text.nodeValue.trim() !== words[kind]) {
        text.nodeValue = `${words[kind]} `;
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
