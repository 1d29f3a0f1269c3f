/*
 * The staff screens, drawn in the browser: the Real-Time Map (Admin) (``pages/admin/map.py``) and
 * the officers' Lot Status (``pages/officer/status.py``), both from ``/live/lot-status.json``.
 *
 * Why here and not in Dash callbacks: a callback re-read every group from the database and Redis
 * and built every pin, popup, table row and card as Dash components, per page and per refresh.
 * Now every staff page reads one body, built at most once a second for all of them and worded on
 * the server (``dashboard.services.lot_status``), and this script lays it out.
 *
 * The admin map's pins are a dash-leaflet ``GeoJSON`` layer whose ``pointToLayer`` /
 * ``onEachFeature`` are below. A refresh changes a pin's colour, tooltip and open popup in place
 * (``popups.js``); the layer's data is replaced only when a pin appears, disappears, moves or
 * closes (that re-creates every pin, and a closed pin's tooltip stays shown). Popups are built
 * when opened.
 *
 * The table and the officer cards live in Dash-rendered elements, so they are returned as Dash
 * component JSON (keyed, so React updates the existing rows and cards). Names typed by admins
 * reach the page only as text (``textContent``, or a component's children), never as HTML.
 */
(function () {
    "use strict";

    const DATA_URL = "/live/lot-status.json";
    const UNAVAILABLE = "Live counts are unavailable right now.";
    const SIGNED_OUT = "You are signed out or no longer have access: reload the page to sign in.";

    // What each page drew last: the body, its ETag and (the map) each pin's layer and where they are.
    // ``call`` / ``applied`` number the requests: a push and a poll can overlap, and an answer
    // older than one already drawn is dropped.
    const pages = {
        adminmap: {
            etag: null, body: null, groups: new Map(), layers: new Map(), placed: null, call: 0, applied: 0,
        },
        officer: {etag: null, body: null, call: 0, applied: 0},
    };

    // -- the body --------------------------------------------------------------------------

    /*
     * The current body for a page, or {error}, or {outdated} for an answer older than one
     * already drawn. ``changed`` is false when the server answered with the ETag already drawn.
     * The body is sent "private, no-cache": the browser revalidates it (If-None-Match, 304) by
     * itself; the first call's request is the one the page preloaded.
     */
    async function load(page, fresh) {
        const call = ++page.call;
        let response;
        try {
            response = await fetch(DATA_URL + (fresh ? "?fresh=1" : ""), {credentials: "same-origin"});
        } catch (_error) {
            return {error: UNAVAILABLE};
        }
        if (response.status === 401 || response.status === 403) {
            return {error: SIGNED_OUT};
        }
        if (!response.ok) {
            return {error: UNAVAILABLE};
        }
        const etag = response.headers.get("ETag");
        if (page.body && etag && etag === page.etag) {
            return {changed: false};
        }
        const body = await response.json();
        if (call < page.applied) {
            return {outdated: true};
        }
        page.applied = call;
        page.body = body;
        page.etag = etag;
        return {changed: true};
    }

    function alertBox(text) {
        return component("Div", {className: "alert alert-warning", role: "alert", children: text});
    }

    function component(type, props, namespace) {
        return {type: type, namespace: namespace || "dash_html_components", props: props};
    }

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

    // -- the admin map's pins and popups ----------------------------------------------------

    const adminmap = pages.adminmap;

    function pinStyle(group, hideout) {
        return {
            radius: 12,
            color: group.closed ? hideout.closed : group.color,
            weight: 2,
            fillColor: group.color,
            fillOpacity: group.closed ? 0.25 : 0.7,
            dashArray: group.closed ? hideout.closed_dash : null,
            className: "adminmap-pin",
        };
    }

    function warningNodes(physical) {
        const box = node("div");
        if (physical.stale) {
            box.appendChild(node("span", "badge bg-warning text-dark me-1 adminmap-stale", "stale: no new count lately"));
        }
        if (physical.flag) {
            box.appendChild(node("span", "badge bg-danger me-1 adminmap-flag", "flagged: " + physical.flag));
        }
        return box;
    }

    function physicalBlock(group, notes) {
        const box = node("div", "mb-2");
        const physical = group.physical;
        if (!physical) {
            box.append(node("div", "fw-semibold", "Physical count"), node("div", "small", notes.no_physical));
            return box;
        }
        const line = node("div");
        line.append(node("span", "adminmap-physical fw-bold", physical.count), physical.popup);
        box.append(
            node("div", "fw-semibold", physical.heading),
            line,
            node("div", "small text-muted", physical.updated),
            warningNodes(physical)
        );
        return box;
    }

    function lotTable(group) {
        if (!group.lots.length) {
            return node("div", "small text-muted", "No active lots in this group.");
        }
        const table = node("table", "table table-sm mb-1 adminmap-lots");
        const head = node("tr");
        ["Lot", "Sold", "Allowance", "Available"].forEach(function (label) {
            head.appendChild(node("th", null, label));
        });
        table.appendChild(node("thead")).appendChild(head);
        const rows = table.appendChild(node("tbody"));
        group.lots.forEach(function (lot) {
            const row = node("tr");
            [lot.name, lot.sold, lot.allowance, lot.available].forEach(function (value) {
                row.appendChild(node("td", null, String(value)));
            });
            rows.appendChild(row);
        });
        return table;
    }

    function popupContent(id) {
        const group = adminmap.groups.get(id);
        const box = node("div", "adminmap-popup");
        if (!group) {
            box.appendChild(node("div", "text-muted", "This lot group no longer exists."));
            return box;
        }
        const notes = adminmap.body.notes;
        box.appendChild(node("div", "fw-bold mb-1", group.name));
        if (group.closed) {
            const closed = node("div", "badge bg-dark mb-2 adminmap-closed", "Closed");
            closed.title = "an admin closed this group";
            box.appendChild(closed);
        }
        box.append(
            physicalBlock(group, notes),
            node("div", "fw-semibold", "Permits sold (lot info)"),
            node("div", "adminmap-permits", group.permits),
            lotTable(group),
            node("div", "small text-muted", notes.differ)
        );
        return box;
    }

    // dash-leaflet GeoJSON functions (their last argument is the layer's context).
    function pointToLayer(feature, latlng, context) {
        const group = adminmap.groups.get(feature.properties.id) || {color: "#333333", closed: false};
        return window.L.circleMarker(latlng, pinStyle(group, context.hideout));
    }

    function onEachFeature(feature, layer, context) {
        const id = feature.properties.id;
        const hideout = context.hideout;
        const group = adminmap.groups.get(id);
        adminmap.layers.set(id, layer);
        layer.bindTooltip(group ? group.tooltip : "", {permanent: Boolean(feature.properties.closed)});
        window.parkopsPopups.bind(layer, function () { return popupContent(id); }, {
            maxWidth: 360,
            minWidth: 260,
            autoPanPaddingTopLeft: hideout.popup_pad,
        });
        layer.parkopsHideout = hideout;
    }

    // Where the pins are and which are closed: the layer's data is replaced only when this changes.
    function placeKey(body) {
        return body.pins.features.map(function (f) {
            return f.id + "@" + f.geometry.coordinates.join(",") + (f.properties.closed ? "x" : "");
        }).join(";");
    }

    function updatePinsInPlace() {
        adminmap.layers.forEach(function (layer, id) {
            const group = adminmap.groups.get(id);
            if (!group || !layer.parkopsHideout) {
                return;
            }
            layer.setStyle(pinStyle(group, layer.parkopsHideout));
            layer.setTooltipContent(group.tooltip);
            window.parkopsPopups.refresh(layer);
        });
    }

    // -- the admin map's table (Dash components) --------------------------------------------

    function warningComponents(physical) {
        const found = [];
        if (physical.stale) {
            found.push(component("Span", {
                className: "badge bg-warning text-dark me-1 adminmap-stale", children: "stale: no new count lately",
            }));
        }
        if (physical.flag) {
            found.push(component("Span", {
                className: "badge bg-danger me-1 adminmap-flag", children: "flagged: " + physical.flag,
            }));
        }
        return found;
    }

    function tableRow(group) {
        const physical = group.physical;
        const physicalCell = physical
            ? component("Div", {children: [
                component("Span", {className: "adminmap-physical", children: physical.count}),
                physical.table,
                component("Div", {children: warningComponents(physical)}),
            ]})
            : component("Span", {className: "text-muted", children: "no sensor data"});
        const permits = component("Div", {children: [
            component("Div", {className: "adminmap-permits", children: group.permits_sold}),
            component("Ul", {className: "list-unstyled small mb-0", children: group.lots.map(function (lot) {
                return component("Li", {key: String(lot.id), children: lot.line});
            })}),
        ]});
        return component("Tr", {id: "adminmap-row-" + group.id, key: String(group.id), children: [
            component("Th", {scope: "row", children: group.name}),
            component("Td", {children: group.status}),
            component("Td", {children: physicalCell}),
            component("Td", {children: permits}),
        ]});
    }

    function adminTable(body) {
        const shown = body.groups.filter(function (group) { return group.on_map; });
        if (!shown.length) {
            return component("P", {className: "text-muted", children: "No lot group is on the map yet."});
        }
        const heads = ["Lot group", "Status", "Physical count", "Permits sold (lot info)"].map(function (label) {
            return component("Th", {scope: "col", children: label});
        });
        const parts = [component("Div", {className: "table-responsive", children: component("Table", {
            id: "adminmap-grid",
            className: "table table-sm align-middle",
            children: [
                component("Caption", {children: body.notes.differ}),
                component("Thead", {children: component("Tr", {children: heads})}),
                component("Tbody", {children: shown.map(tableRow)}),
            ],
        })})];
        if (body.hidden) {
            parts.push(component("P", {className: "small text-muted", children: body.hidden}));
        }
        return component("Div", {children: parts});
    }

    /*
     * Outputs: the GeoJSON layer's data, the map's viewport (fitted on the first draw only, so a
     * refresh never undoes the admin's panning, and only when the map did not open on the pins:
     * ``openedOn``, the bounds the page gave it), the table and the error slot. ``shownPins`` is
     * the layer's data drawn now (null on a new visit to the page).
     */
    async function adminMap(_message, _tick, shownPins, openedOn) {
        const noUpdate = window.dash_clientside.no_update;
        const pushed = window.dash_clientside.callback_context.triggered_id === "adminmap-live";
        const first = !shownPins;
        const loaded = await load(adminmap, pushed);
        if (loaded.error) {
            return [noUpdate, noUpdate, noUpdate, alertBox(loaded.error)];
        }
        if (loaded.outdated) {
            return [noUpdate, noUpdate, noUpdate, noUpdate];
        }
        if (!first && !loaded.changed) {
            return [noUpdate, noUpdate, noUpdate, null];
        }
        const body = adminmap.body;
        const placed = placeKey(body);
        const moved = first || placed !== adminmap.placed;
        adminmap.placed = placed;
        adminmap.groups = new Map(body.groups.map(function (group) { return [group.id, group]; }));
        if (moved) {
            adminmap.layers = new Map();
        } else {
            updatePinsInPlace();
        }
        const viewport = first && body.bounds && !openedOn
            ? {bounds: body.bounds, transition: "fitBounds"}
            : noUpdate;
        return [moved ? body.pins : noUpdate, viewport, adminTable(body), null];
    }

    // -- the officers' cards ----------------------------------------------------------------

    function byName(a, b) {
        const left = a.name.toLowerCase();
        const right = b.name.toLowerCase();
        if (left !== right) {
            return left < right ? -1 : 1;
        }
        return a.id - b.id;
    }

    // Fullest or emptiest first (closed groups and lots without a figure last), or by name.
    function sortLots(lots, order) {
        const named = lots.slice().sort(byName);
        if (order === "name") {
            return named;
        }
        const known = named.filter(function (lot) { return lot.fullness !== null; });
        const unknown = named.filter(function (lot) { return lot.fullness === null; });
        known.sort(function (a, b) {
            return order === "emptiest" ? a.fullness - b.fullness : b.fullness - a.fullness;
        });
        return known.concat(unknown);
    }

    function officerPhysical(physical) {
        if (!physical) {
            return component("Div", {className: "text-muted", children: "Physical: no sensor data"});
        }
        const badges = [];
        if (physical.stale) {
            badges.push(component("Span", {className: "badge bg-warning text-dark ms-1", children: "stale"}));
        }
        if (physical.flag) {
            badges.push(component("Span", {className: "badge bg-danger ms-1", title: physical.flag, children: "flagged"}));
        }
        return component("Div", {children: [
            "Physical: ",
            component("Strong", {className: "officer-physical", children: physical.count}),
            physical.officer,
            ...badges,
            component("Div", {className: "small text-muted", children: physical.origin}),
        ]});
    }

    function card(lot) {
        const group = lot.group;
        const title = [component("Span", {className: "fw-semibold", children: lot.name})];
        if (group.closed) {
            title.push(component("Span", {className: "badge bg-dark ms-2", children: "Closed"}));
        }
        return component("Div", {
            id: "officer-lot-" + lot.id,
            key: String(lot.id),
            className: "card mb-2 officer-card",
            style: {borderLeft: "0.4rem solid " + group.color},
            children: component("Div", {className: "card-body py-2", children: [
                component("H2", {className: "h6 mb-1", children: title}),
                component("Div", {className: "small text-muted mb-2", children: [
                    component("Span", {
                        className: "d-inline-block rounded-circle me-1 align-middle",
                        style: {width: "0.7rem", height: "0.7rem", backgroundColor: group.color},
                        "aria-hidden": "true",
                    }),
                    group.name,
                ]}),
                officerPhysical(group.physical),
                component("Div", {children: [
                    "Permits: ",
                    component("Strong", {className: "officer-permits", children: lot.permits}),
                    lot.left,
                ]}),
            ]}),
        });
    }

    function officerList(body, order) {
        const lots = [];
        body.groups.forEach(function (group) {
            group.lots.forEach(function (lot) {
                lots.push(Object.assign({group: group}, lot));
            });
        });
        if (!lots.length) {
            return component("P", {className: "text-muted", children: "There are no lots yet."});
        }
        return sortLots(lots, order).map(card);
    }

    // Outputs: the cards and the error slot. A new sort re-sorts the body held, without a request.
    async function officerCards(_message, _tick, order) {
        const noUpdate = window.dash_clientside.no_update;
        const officer = pages.officer;
        const triggered = window.dash_clientside.callback_context.triggered_id;
        if (triggered === "officer-sort" && officer.body) {
            return [officerList(officer.body, order), noUpdate];
        }
        const drawn = document.querySelector("#officer-cards .officer-card, #officer-cards p") !== null;
        const loaded = await load(officer, triggered === "officer-live");
        if (loaded.error) {
            return [noUpdate, alertBox(loaded.error)];
        }
        if (loaded.outdated) {
            return [noUpdate, noUpdate];
        }
        if (!loaded.changed && drawn) {
            return [noUpdate, null];
        }
        return [officerList(officer.body, order), null];
    }

    window.parkopsStaffMap = {pointToLayer: pointToLayer, onEachFeature: onEachFeature};
    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        parkops_staff: {adminMap: adminMap, officerCards: officerCards},
    });
}());
