// The embed view (flux_demo/ui/embed.py): "?view=embed&tab=NAME" in the page's address, or in a
// <gradio-app> element's src on a documentation page, shows that tab alone: the page header, the tab
// bar and the footer are hidden (page.css, "flux-embed" classes). In an iframe the page tells the host
// its height, {type: "flux-demo:height", height}, whenever it changes.
(() => {
  const HEIGHT_MESSAGE = "flux-demo:height";
  const handled = (window.__fluxDemoEmbed = window.__fluxDemoEmbed || new WeakSet());

  // Run `then(element)` once `selector` matches inside `root` (Gradio renders after this script runs).
  const whenRendered = (root, selector, then) => {
    const found = root.querySelector(selector);
    if (found) return then(found);
    const observer = new MutationObserver(() => {
      const element = root.querySelector(selector);
      if (element) {
        observer.disconnect();
        then(element);
      }
    });
    observer.observe(root, { childList: true, subtree: true });
  };

  // Select the tab named `name` (its gr.Tab id) and hide the tab bar; an unknown name keeps the bar.
  const showTab = (app, name) =>
    whenRendered(app, "#tabs [role=tab]", () => {
      const button = app.querySelector(`#tabs [role=tab][data-tab-id="${CSS.escape(name)}"]`);
      if (!button) return;
      if (button.getAttribute("aria-selected") !== "true") button.click();
      app.classList.add("flux-embed-tab");
    });

  // The content's height, with the same margin below it as above it.
  const reportHeight = (app) =>
    whenRendered(app, "main.contain > *", (content) => {
      let last = 0;
      const post = () => {
        const top = app.getBoundingClientRect().top;
        const box = content.getBoundingClientRect();
        const height = Math.ceil(box.bottom - top + (box.top - top));
        if (height !== last) {
          last = height;
          window.parent.postMessage({ type: HEIGHT_MESSAGE, height }, "*");
        }
      };
      new ResizeObserver(post).observe(content);
      post();
    });

  for (const app of document.querySelectorAll("gradio-app")) {
    if (handled.has(app)) continue;
    handled.add(app);
    // A web component's own address is its src; the page's app has none.
    const query = new URL(app.getAttribute("src") || location.href, location.href).searchParams;
    if (query.get("view") !== "embed") continue;
    app.classList.add("flux-embed");
    if (query.get("tab")) showTab(app, query.get("tab"));
    if (!app.hasAttribute("src") && window.parent !== window) reportHeight(app);
  }
})();
