/*
 * The user Real-Time Map, drawn in the browser (``pages/realtime.py``, ``/live/user-map.json``).
 *
 * Why here and not in a Dash callback: a callback built every marker, tooltip and popup as Dash
 * components on the server for every visitor (471 KiB of JSON for 500 groups). The page now reads
 * the same cached, ETag'd body for everyone of its audience and this script draws it (its wording
 * all comes from the server: ``dashboard.services.maps.user_map_payload``).
 *
 * Why Leaflet's own GeoJSON layer, added to the map the moment Leaflet creates it (an init hook on
 * ``L.Map`` for the container ``realtime-map``), rather than dash-leaflet's ``GeoJSON`` filled by
 * the page's callback: that one is a lazily loaded component (its own script, a React Suspense
 * round) whose data could only arrive by the callback Dash fires once the whole page has drawn.
 * The pins came about 90 ms after the map on a phone-sized first load (``bench/pages.py``). Here
 * the preloaded body is read as soon as the map exists and drawn within a few milliseconds.
 *
 * A pushed change of the figure a pin shows is applied as it comes (the message carries it); a
 * poll tick, or a change it cannot apply, re-reads the body (``304`` when unchanged). Either way
 * the pins' colour, tooltip and the open popup change in place (``popups.js``): the pins are
 * re-created only when one appears, disappears or moves (which closes a popup). Popups are built when opened, so
 * thousands of pins cost nothing until one is tapped.
 *
 * Everything a group's name or a lot's name reaches is set as text (``textContent``), never as
 * HTML: names are typed by admins and must not become markup.
 */
(function () {
    "use strict";

    const DATA_URL = "/live/user-map.json";
    const MAP_ID = "realtime-map";  // ``dashboard.components.realtime_map.PREFIX`` + "-map"
    const UNAVAILABLE = "Live counts are unavailable right now.";
    // A user-timing mark as the pins are (re)created, with the map and its data both there: how
    // long drawing takes, in a real visitor's browser or in ``bench/pages.py``.
    const PLACED = "parkops:pins-placed";

    // What is drawn now: the last body, the group under each pin and each pin's layer; the map
    // (null while no map is on the page), its layer of pins and its look (``PIN_LOOK``); whether
    // the page began reading before its map was made; the first read, and the order of reads (an
    // answer older than one drawn is dropped).
    const drawn = {
        etag: null, body: null, groups: new Map(), layers: new Map(),
        map: null, pins: null, look: null, fit: false, early: false, reading: null, call: 0, applied: 0,
    };

    function node(tag, className, text) {
        const element = document.createElement(tag);
        if (className) {
            element.className = className;
        }
        if (text !== undefined && text !== null) {
            element.textContent = text;
        }
        return element;
    }

    // Python's format(x, ".0f") rounds a half to the even neighbour; the server words the same
    // figures that way, so a figure updated here from a push reads as the server would say it.
    function wholePercent(value) {
        const rounded = Math.round(value);
        return Math.abs(value % 1) === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
    }

    // ``maps.availability_text`` for a figure pushed to the page.
    function availabilityText(group) {
        if (group.status === "closed") {
            return "Closed";
        }
        return group.available === null ? "No data" : wholePercent(group.available) + "% available";
    }

    // A link the Dash router follows without reloading the page (as dcc.Link does).
    function routerLink(href, text, className) {
        const link = node("a", className, text);
        link.href = href;
        link.addEventListener("click", function (event) {
            if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
                return;
            }
            event.preventDefault();
            window.history.pushState({}, "", href);
            window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
            window.scrollTo(0, 0);
        });
        return link;
    }

    function donut(group, colors) {
        const known = group.available !== null && group.status !== "closed";
        const free = known ? Math.max(0, Math.min(100, group.available)) : 0;
        const center = group.status === "closed" ? "Closed" : (known ? wholePercent(free) + "%" : "—");
        const label = group.name + ": " + group.text;
        const box = node("div", "realtime-donut");
        box.setAttribute("role", "img");
        box.setAttribute("aria-label", label);
        box.dataset.free = String(free);
        const caption = node("div", "realtime-donut-caption", label);
        caption.setAttribute("aria-hidden", "true");
        const ring = node("div", "realtime-donut-ring");
        ring.setAttribute("aria-hidden", "true");
        ring.style.background = "conic-gradient(" + colors.available + " 0 " + free + "%, " +
            colors.taken + " " + free + "% 100%)";
        ring.appendChild(node("span", "realtime-donut-value", center));
        box.append(caption, ring);
        return box;
    }

    function badges(lot) {
        const found = [];
        if (lot.standard) {
            found.push(node("span", "badge bg-success ms-1 permit-standard", "Standard"));
        }
        if (lot.temporary) {
            found.push(node("span", "badge bg-warning text-dark ms-1 permit-temporary", "Temporary"));
        }
        return found;
    }

    function lotList(group) {
        if (!group.lots.length) {
            return node("p", "text-muted small mb-1", "No lots.");
        }
        const list = node("ul", "list-unstyled small mb-2");
        group.lots.forEach(function (lot) {
            const item = node("li", "realtime-lot");
            item.append(
                node("span", null, lot.name),
                node("span", lot.sold_out ? "fw-semibold realtime-sold-out" : "text-muted", " " + lot.figure),
                ...badges(lot)
            );
            list.appendChild(item);
        });
        return list;
    }

    // Instead of a Book button into a checkout that can only refuse: the nearest group with
    // space and the waitlist (a guest has to log in to join one).
    function soldOutOffer(group, loggedIn) {
        const offer = node("div", "realtime-sold-out-offer");
        offer.appendChild(node("p", "fw-semibold mb-1", "Sold out: every permit is taken."));
        const ways = node("ul", "small mb-0 ps-3");
        if (group.nearest) {
            const item = node("li", null, "Nearest with space: ");
            item.appendChild(routerLink(group.nearest.href, group.nearest.name, "fw-semibold"));
            ways.appendChild(item);
        }
        const waitlist = node("li");
        if (loggedIn) {
            waitlist.appendChild(routerLink(group.href, "Join a waitlist"));
        } else {
            waitlist.append(routerLink(group.login, "Log in"), " to join the waitlist");
        }
        ways.appendChild(waitlist);
        offer.appendChild(ways);
        return offer;
    }

    function popupContent(id, colors) {
        const group = drawn.groups.get(id);
        const box = node("div", "realtime-popup");
        if (!group) {
            box.appendChild(node("p", "text-muted small", "This lot group is no longer on the map."));
            return box;
        }
        box.append(node("h2", "h6 mb-1", group.name), donut(group, colors));
        if (group.status === "stale") {
            box.appendChild(node("p", "small text-warning-emphasis mb-1", "The count is out of date."));
        }
        box.appendChild(lotList(group));
        box.appendChild(
            group.sold_out
                ? soldOutOffer(group, drawn.body.logged_in)
                : routerLink(group.href, "Book permit", "btn btn-sm btn-primary text-white realtime-book")
        );
        return box;
    }

    function pinStyle(group, hideout) {
        const closed = group.status === "closed";
        const stale = group.status === "stale";
        const color = closed ? hideout.closed : group.color;
        return {
            radius: 12,
            color: color,
            weight: 3,
            fillColor: color,
            fillOpacity: stale ? 0.35 : 0.8,
            dashArray: stale ? hideout.stale_dash : null,
            className: "realtime-pin",
        };
    }

    function tipText(group) {
        return group.name + ": " + group.text;
    }

    // -- the pins' layer ------------------------------------------------------------------------

    function pointToLayer(feature, latlng, hideout) {
        return window.L.circleMarker(latlng, pinStyle(feature.properties, hideout));
    }

    // A pin's tooltip and popup are made the first time they are wanted: with thousands of pins,
    // making them all up front was most of the time a city-sized map took to draw.
    function onEachFeature(feature, layer, hideout) {
        const id = feature.properties.id;
        drawn.layers.set(id, layer);
        layer.parkopsHideout = hideout;
        layer.once("mouseover", function () {
            layer.bindTooltip(tipText(drawn.groups.get(id) || feature.properties)).openTooltip();
        });
        layer.once("click", function () {
            window.parkopsPopups.bind(layer, function () { return popupContent(id, hideout.colors); }, {
                minWidth: 220,
                maxWidth: 260,
                autoPanPaddingTopLeft: hideout.popup_pad,
            }).openPopup();
        });
    }

    // -- the refresh -------------------------------------------------------------------------

    // Where the pins are: the GeoJSON data is replaced only when this changes.
    function placeKey(body) {
        return body.pins.features.map(function (f) {
            return f.id + "@" + f.geometry.coordinates.join(",");
        }).join(";");
    }

    // Colours, tooltips and the open popup follow the new figures without re-creating a pin.
    function updateInPlace() {
        drawn.layers.forEach(function (layer, id) {
            const group = drawn.groups.get(id);
            if (!group || !layer.parkopsHideout) {
                return;
            }
            layer.setStyle(pinStyle(group, layer.parkopsHideout));
            layer.setTooltipContent(tipText(group));
            window.parkopsPopups.refresh(layer);
        });
    }

    /*
     * A pushed message carries the one figure that changed (``occupancy.apply_figures``: group,
     * source, percent full, stale). When it is the figure a pin shows, it is applied here, so
     * thousands of open maps do not all ask for the body on every change; anything else (another
     * source, a setting changed, a message not understood) is read from the server.
     */
    function applyPushed(message) {
        let change;
        try {
            change = JSON.parse(message);
        } catch (_error) {
            return false;
        }
        const group = change && drawn.groups.get(change.group_id);
        if (!group || !change.source || group.source !== change.source || !("percent" in change)) {
            return false;
        }
        if (group.status !== "closed") {
            group.status = change.stale ? "stale" : "open";
            group.available = change.percent === null
                ? null
                : Math.round(Math.max(0, 100 - change.percent) * 10) / 10;
        }
        group.text = availabilityText(group);
        updateInPlace();
        return true;
    }

    function component(type, props, namespace) {
        return {type: type, namespace: namespace || "dash_html_components", props: props};
    }

    function badgeComponents(lot) {
        const found = [];
        if (lot.standard) {
            found.push(component("Span", {className: "badge bg-success ms-1 permit-standard", children: "Standard"}));
        }
        if (lot.temporary) {
            found.push(component("Span", {
                className: "badge bg-warning text-dark ms-1 permit-temporary", children: "Temporary",
            }));
        }
        return found;
    }

    // The table alternative, as Dash components (it lives in a Dash-rendered element).
    function table(body) {
        const features = body.pins.features;
        if (!features.length) {
            return component("P", {className: "text-muted", children: "No lot groups are on the map yet."});
        }
        const rows = features.map(function (feature) {
            const group = feature.properties;
            return component("Tr", {key: String(group.id), children: [
                component("Th", {scope: "row", children: group.name}),
                component("Td", {children: group.text}),
                component("Td", {children: group.lots.map(function (lot) {
                    return component("Div", {children: [lot.name + ": " + lot.figure, ...badgeComponents(lot)]});
                })}),
                component("Td", {children: component("Link", {
                    href: group.href, children: "Book permit",
                    className: "btn btn-sm btn-primary text-white realtime-book",
                }, "dash_core_components")}),
            ]});
        });
        return component("Div", {className: "table-responsive", children: component("Table", {
            className: "table table-sm small align-middle",
            children: [
                component("Thead", {children: component("Tr", {children: [
                    component("Th", {children: "Lot group"}), component("Th", {children: "Availability"}),
                    component("Th", {children: "Lots"}), component("Th", {children: ""}),
                ]})}),
                component("Tbody", {children: rows}),
            ],
        })});
    }

    // The new body on the map: the pins re-created when one appeared, went or moved, else their
    // figures changed in place.
    function draw(body, etag) {
        const moved = !drawn.body || placeKey(body) !== placeKey(drawn.body);
        drawn.etag = etag;
        drawn.body = body;
        drawn.groups = new Map(body.pins.features.map(function (f) { return [f.id, f.properties]; }));
        if (moved) {
            place();
        } else {
            updateInPlace();
        }
    }

    // Every pin of the body on the map (none yet when the body came first); on the first draw of
    // a map opened on the world, the map fitted on them once it has its opening view (a map just
    // made gets it from dash-leaflet right after).
    function place() {
        if (!drawn.pins || !drawn.body) {
            return;
        }
        performance.mark(PLACED);
        drawn.layers = new Map();
        drawn.pins.clearLayers();
        drawn.pins.addData(drawn.body.pins);
        const bounds = drawn.body.bounds;
        if (drawn.fit && bounds) {
            const map = drawn.map;
            drawn.fit = false;
            map.whenReady(function () { map.fitBounds(bounds, drawn.look.fit); });
        }
    }

    /*
     * Reads the body and draws it; true once drawn or unchanged, false when it could not be read.
     * After a push the page says which body it holds (``?fresh=1``, If-None-Match), so the server
     * knows what is news to it; otherwise the browser revalidates by itself (the body is sent
     * "private, no-cache"), and a map's first read is answered by the page's preload.
     */
    async function read(pushed) {
        const call = ++drawn.call;
        let response;
        try {
            response = pushed && drawn.etag
                ? await fetch(DATA_URL + "?fresh=1", {
                    credentials: "same-origin", cache: "no-store", headers: {"If-None-Match": drawn.etag},
                })
                : await fetch(DATA_URL, {credentials: "same-origin"});
        } catch (_error) {
            return false;
        }
        if (response.status === 304) {
            return true;
        }
        if (!response.ok) {
            return false;
        }
        const etag = response.headers.get("ETag");
        if (drawn.body && etag && etag === drawn.etag) {
            return true;
        }
        const body = await response.json();
        if (call >= drawn.applied) {
            drawn.applied = call;
            draw(body, etag);
        }
        return true;
    }

    // The map's first read, shared with the page's first callback (which Dash fires once the
    // page has drawn, by when the map has begun it).
    function firstRead() {
        if (!drawn.reading) {
            drawn.reading = read(false);
        }
        return drawn.reading;
    }

    // A page that opens on the map preloads its body (``dashboard.map_routes.map_preloads``): read
    // now, while Dash draws the page, so the pins are there the moment Leaflet makes the map.
    if (document.querySelector('link[rel="preload"][href="' + DATA_URL + '"]')) {
        drawn.early = true;
        firstRead();
    }

    // Leaflet calls this as each map is made: the user map gets its layer of pins, drawn from the
    // body read as the page loaded, or read now. A map made later is a new visit (the pages
    // router re-creates it): nothing of the previous one is kept, so it never shows a body from
    // minutes ago.
    window.L.Map.addInitHook(function () {
        const container = this.getContainer();
        if (container.id !== MAP_ID) {
            return;
        }
        const map = this;
        const settings = container.closest("[data-look]");
        drawn.look = JSON.parse(settings.dataset.look);
        drawn.fit = settings.dataset.fit === "true";
        drawn.map = map;
        drawn.pins = window.L.geoJSON(null, {
            pointToLayer: function (feature, latlng) { return pointToLayer(feature, latlng, drawn.look); },
            onEachFeature: function (feature, layer) { onEachFeature(feature, layer, drawn.look); },
        }).addTo(map);
        map.on("unload", function () {
            if (drawn.map === map) {
                drawn.map = null;
                drawn.pins = null;
            }
        });
        if (drawn.early) {
            drawn.early = false;
            place();
            return;
        }
        drawn.etag = null;
        drawn.body = null;
        drawn.groups = new Map();
        drawn.reading = null;
        firstRead();
    });

    /*
     * The page's callback (``pages/realtime.py``), on its first call, each pushed change, the
     * poll and when the table is opened. Outputs: the table (sent while it is shown) and the
     * error slot. The pins are drawn on the map directly (``draw``).
     */
    async function refresh(message, _tick, tableShown) {
        const noUpdate = window.dash_clientside.no_update;
        const triggered = window.dash_clientside.callback_context.triggered_id;
        const pushed = triggered === "realtime-live";
        if (pushed && drawn.body && applyPushed(message)) {
            return [tableShown ? table(drawn.body) : noUpdate, noUpdate];
        }
        const ok = triggered ? await read(pushed) : await firstRead();
        if (!ok) {
            const alert = component("Div", {className: "alert alert-warning", role: "alert", children: UNAVAILABLE});
            return [noUpdate, alert];
        }
        return [tableShown && drawn.body ? table(drawn.body) : noUpdate, null];
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        parkops_map: {refresh: refresh},
    });
}());
