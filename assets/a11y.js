// Keyboard and screen-reader fixes for parts of Dash's own components that ParkOps cannot set from
// Python (an asset, not an inline script, so the strict Content-Security-Policy stays on). Applied
// to whatever the renderer draws, as it draws it; tests/browser/test_every_page_walk.py runs axe-core
// over every page with them.
(function () {
  "use strict";

  // dcc.Dropdown (Dash 4) puts the Tab stop on a hidden proxy input (aria-hidden, yet focusable)
  // that hands focus on to the real button, and names the button by its value only, so the
  // page's <label> is never read. Tab now lands on the button itself, named "<label> <value>".
  function fixDropdowns(root) {
    root.querySelectorAll(".dash-dropdown-focus-target").forEach(function (proxy) {
      if (proxy.tabIndex !== -1) {
        proxy.tabIndex = -1;
      }
      var button = proxy.nextElementSibling;
      if (!button || button.tagName !== "BUTTON") {
        return;
      }
      if (!button.disabled && button.tabIndex !== 0) {
        button.tabIndex = 0;
      }
      var label = button.id && document.querySelector('label[for="' + CSS.escape(button.id) + '"]');
      if (label) {
        if (!label.id) {
          label.id = button.id + "-label";
        }
        var named = button.getAttribute("aria-labelledby") || "";
        if (named.split(" ").indexOf(label.id) === -1) {
          button.setAttribute("aria-labelledby", (label.id + " " + named).trim());
        }
      }
    });
  }

  // dcc.Upload's file input is invisible (the drop zone is what people see) and unnamed: it takes
  // the drop zone's words as its name.
  function fixUploads(root) {
    root.querySelectorAll('input[type="file"]:not([aria-label])').forEach(function (input) {
      var zone = input.parentElement;
      var words = zone ? zone.textContent.trim() : "";
      if (words) {
        input.setAttribute("aria-label", words);
      }
    });
  }

  // A table wider than a phone scrolls inside its .table-responsive box: that box must take
  // keyboard focus so the arrow keys can scroll it (and stops doing so when it fits).
  function fixScrollers(root) {
    root.querySelectorAll(".table-responsive").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-parkops-scroller", "");
      } else if (!scrolls && box.hasAttribute("data-parkops-scroller")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-parkops-scroller");
      }
    });
  }

  // dbc.Tabs (2.0) names every tab "...-tab-null" and points each at a panel "...-tabpane-null"
  // that does not exist: a screen reader is sent nowhere. Each tab gets its own id, and the
  // active one points at the panel on show (dbc renders only that one), which it labels.
  function fixTabs(root) {
    root.querySelectorAll('[role="tablist"]').forEach(function (list, listIndex) {
      var tabs = list.querySelectorAll('[role="tab"]');
      var container = list.parentElement;
      var pane = container && container.querySelector(":scope > .tab-content > .tab-pane.active");
      tabs.forEach(function (tab, tabIndex) {
        if (/-null$/.test(tab.id)) {
          tab.id = "parkops-tabs-" + listIndex + "-tab-" + tabIndex;
        }
        var active = tab.classList.contains("active");
        if (active && pane) {
          if (!pane.id) {
            pane.id = "parkops-tabs-" + listIndex + "-panel";
          }
          if (tab.getAttribute("aria-controls") !== pane.id) {
            tab.setAttribute("aria-controls", pane.id);
          }
          if (pane.getAttribute("aria-labelledby") !== tab.id) {
            pane.setAttribute("role", "tabpanel");
            pane.setAttribute("aria-labelledby", tab.id);
          }
        } else if (tab.hasAttribute("aria-controls")) {
          tab.removeAttribute("aria-controls");
        }
      });
    });
  }

  var pending = false;
  function fixAll() {
    pending = false;
    fixDropdowns(document);
    fixUploads(document);
    fixScrollers(document);
    fixTabs(document);
  }
  function schedule() {
    if (!pending) {
      pending = true;
      window.requestAnimationFrame(fixAll);
    }
  }

  function start() {
    new MutationObserver(schedule).observe(document.body, {
      childList: true,
      subtree: true,
      attributes: true,
      attributeFilter: ["tabindex", "aria-labelledby", "aria-controls", "disabled", "class"],
    });
    window.addEventListener("resize", schedule);
    schedule();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
