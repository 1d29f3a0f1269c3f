// Client-side callbacks of the enforcement screens, kept in an asset (no inline script, so a strict
// Content-Security-Policy can stay on).
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  enforcement: {
    print: function (clicks) {
      if (clicks) {
        window.print();
      }
      return "";
    },
  },
});
