/*
 * Map popups that follow live figures without being rebuilt, for the user map
 * (``realtime_map.js``) and the admin map (``staff_live.js``).
 *
 * Why: Leaflet's ``popup.update()`` throws the open popup's content away and builds it again. With
 * counts pushed every second or so, a tap on the popup's "Book permit" link could land on the
 * element just removed and be lost, and a selection or a focused link went with it. Here the
 * content is built again off the page and, when it has the same shape (the same elements and the
 * same links), only its texts and attributes are copied onto the open one; the elements a person
 * is touching stay where they are. A change of shape (a group sold out, a lot added, a link's
 * target changed) rebuilds the popup as before: that is rare and changes what the person sees.
 */
(function () {
    "use strict";

    // The same elements in the same order and every link to the same place; a link's address is
    // also held by its click handler (``routerLink``), so a changed one must be made anew.
    function sameShape(shown, fresh) {
        if (shown.nodeType !== fresh.nodeType || shown.nodeName !== fresh.nodeName) {
            return false;
        }
        if (shown.nodeName === "A" && shown.getAttribute("href") !== fresh.getAttribute("href")) {
            return false;
        }
        if (shown.childNodes.length !== fresh.childNodes.length) {
            return false;
        }
        for (let index = 0; index < fresh.childNodes.length; index += 1) {
            if (!sameShape(shown.childNodes[index], fresh.childNodes[index])) {
                return false;
            }
        }
        return true;
    }

    // Copies the texts and attributes of ``fresh`` onto ``shown`` (of the same shape), touching
    // only what differs.
    function copyOnto(shown, fresh) {
        if (fresh.nodeType === Node.TEXT_NODE) {
            if (shown.data !== fresh.data) {
                shown.data = fresh.data;
            }
            return;
        }
        Array.from(shown.attributes).forEach(function (attribute) {
            if (!fresh.hasAttribute(attribute.name)) {
                shown.removeAttribute(attribute.name);
            }
        });
        Array.from(fresh.attributes).forEach(function (attribute) {
            if (shown.getAttribute(attribute.name) !== attribute.value) {
                shown.setAttribute(attribute.name, attribute.value);
            }
        });
        fresh.childNodes.forEach(function (child, index) {
            copyOnto(shown.childNodes[index], child);
        });
    }

    // A popup on ``layer`` whose content ``build()`` makes when it opens.
    function bind(layer, build, options) {
        layer.parkopsPopup = {build: build, shown: null};
        return layer.bindPopup(function () {
            layer.parkopsPopup.shown = build();
            return layer.parkopsPopup.shown;
        }, options);
    }

    // An open popup brought up to date: in place when it keeps its shape, else built again.
    function refresh(layer) {
        const popup = layer.parkopsPopup;
        if (!popup || !layer.isPopupOpen()) {
            return;
        }
        const fresh = popup.build();
        if (popup.shown && sameShape(popup.shown, fresh)) {
            copyOnto(popup.shown, fresh);
        } else {
            layer.getPopup().update();
        }
    }

    window.parkopsPopups = {bind: bind, refresh: refresh};
}());
