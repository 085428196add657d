// Lays out every SOP flow chart on the page (web/templates/flowchart/_chart.html) with ELK and draws it as an SVG.
// Nodes are sized to their measured text; ELK's layered algorithm places them, routes the edges orthogonally and
// places the outcome labels, so no label is cut and no edge runs across a box or a label.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const TITLE_WIDTH = 200, NARROW_TITLE_WIDTH = 160;  // a step's title wraps onto more lines beyond this
  const PAD_X = 12, PAD_Y = 9, HEX = 12;
  const TITLE_LINE = 17, SUMMARY_LINE = 15, GAP = 3;
  const LABEL_PAD_X = 4, LABEL_LINE = 14;
  const START = "__start";
  const OPTIONS = {
    "elk.algorithm": "layered",
    "elk.direction": "DOWN",
    "elk.edgeRouting": "ORTHOGONAL",
    "elk.edgeLabels.placement": "CENTER",
    "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
    "elk.layered.cycleBreaking.strategy": "MODEL_ORDER",
    "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
    "elk.layered.thoroughness": "30",
    "elk.spacing.nodeNode": "28",
    "elk.layered.spacing.nodeNodeBetweenLayers": "30",
    "elk.spacing.edgeNode": "16",
    "elk.layered.spacing.edgeNodeBetweenLayers": "14",
    "elk.spacing.edgeEdge": "12",
    "elk.layered.spacing.edgeEdgeBetweenLayers": "10",
    "elk.spacing.edgeLabel": "4",
    "elk.padding": "[top=12,left=12,bottom=12,right=12]",
  };
  const layouts = new Map();  // one layout per graph shape: a poll that only moves the marks redraws at once
  const listsOpened = new Set();  // charts whose step list the reader opened stay open across redraws
  let elk = null;

  function make(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  // Text widths as this page renders them, measured in a hidden SVG that carries the chart's classes.
  function measurer(figure) {
    const svg = make("svg", {class: "sop-chart-svg", "aria-hidden": "true",
                             style: "position:absolute;visibility:hidden;width:0;height:0;overflow:hidden"});
    figure.appendChild(svg);
    const text = make("text", {}, svg);
    return {
      width(value, cls) { text.setAttribute("class", cls); text.textContent = value; return text.getComputedTextLength(); },
      done() { svg.remove(); },
    };
  }

  function wrap(value, cls, limit, m) {
    const lines = [];
    let line = "";
    for (const word of value.split(/\s+/).filter(Boolean)) {
      const next = line ? line + " " + word : word;
      if (line && m.width(next, cls) > limit) { lines.push(line); line = word; } else { line = next; }
    }
    if (line) lines.push(line);
    return lines.length ? lines : [""];
  }

  function sized(graph, m, titleWidth) {
    const boxes = {};
    for (const n of graph.nodes) {
      const title = wrap(n.label, "title", titleWidth, m);
      const summary = wrap(n.summary || "", "summary", Math.max(titleWidth, ...title.map((t) => m.width(t, "title"))), m);
      const mark = n.mark ? [n.mark] : [];  // a compare view's tag, on a line of its own inside the box
      const inner = Math.max(90, ...title.map((t) => m.width(t, "title")), ...summary.map((t) => m.width(t, "summary")),
                             ...mark.map((t) => m.width(t, "mark")));
      const extra = n.type === "decide" ? 2 * HEX : n.type === "end" ? 10 : 0;
      boxes[n.id] = {title, summary, width: Math.ceil(inner + 2 * PAD_X + extra),
                     height: Math.ceil(2 * PAD_Y + title.length * TITLE_LINE + GAP + (summary.length + mark.length) * SUMMARY_LINE)};
    }
    const labels = {};
    for (const e of graph.edges) {
      if (!e.label) continue;
      const lines = wrap(e.label.replace(/ \/ /g, " /\u00a0"), "edge-label", 120, m);
      labels[e.id] = {lines, width: Math.ceil(Math.max(...lines.map((t) => m.width(t, "edge-label"))) + 2 * LABEL_PAD_X),
                      height: lines.length * LABEL_LINE + 2};
    }
    return {boxes, labels};
  }

  function elkGraph(graph, size) {
    const start = graph.nodes.some((n) => n.id === graph.start);
    const children = graph.nodes.map((n) => ({id: n.id, width: size.boxes[n.id].width, height: size.boxes[n.id].height}));
    const edges = graph.edges.map((e) => ({
      id: e.id, sources: [e.source], targets: [e.target],
      labels: size.labels[e.id] ? [{text: e.label, width: size.labels[e.id].width, height: size.labels[e.id].height}] : [],
    }));
    if (start) {
      children.unshift({id: START, width: 14, height: 14});
      edges.unshift({id: START + "->" + graph.start, sources: [START], targets: [graph.start], labels: []});
    }
    return {id: "root", layoutOptions: OPTIONS, children, edges};
  }

  function shapeKey(graph, titleWidth) {
    return JSON.stringify([titleWidth, graph.start, graph.nodes.map((n) => [n.id, n.label, n.summary, n.type, n.mark]),
                           graph.edges.map((e) => [e.source, e.target, e.label])]);
  }

  function path(points) {
    // Orthogonal segments with small rounded corners.
    let d = `M${points[0].x},${points[0].y}`;
    for (let i = 1; i < points.length; i++) {
      const p = points[i], prev = points[i - 1], next = points[i + 1];
      if (!next) { d += ` L${p.x},${p.y}`; break; }
      const r = Math.min(6, Math.hypot(p.x - prev.x, p.y - prev.y) / 2, Math.hypot(next.x - p.x, next.y - p.y) / 2);
      const a = {x: p.x - Math.sign(p.x - prev.x) * r, y: p.y - Math.sign(p.y - prev.y) * r};
      const b = {x: p.x + Math.sign(next.x - p.x) * r, y: p.y + Math.sign(next.y - p.y) * r};
      d += ` L${a.x},${a.y} Q${p.x},${p.y} ${b.x},${b.y}`;
    }
    return d;
  }

  function shape(n, w, h, g) {
    if (n.type === "decide") {
      return make("polygon", {class: "node-shape", points: `${HEX},0 ${w - HEX},0 ${w},${h / 2} ${w - HEX},${h} ${HEX},${h} 0,${h / 2}`}, g);
    }
    const rx = n.type === "end" ? Math.min(h / 2, 20) : 6;
    return make("rect", {class: "node-shape", width: w, height: h, rx, ry: rx}, g);
  }

  function render(figure, graph, size, laid) {
    const uid = figure.id || "sop-chart";
    const svg = make("svg", {class: "sop-chart-svg", width: Math.ceil(laid.width), height: Math.ceil(laid.height),
                             viewBox: `0 0 ${Math.ceil(laid.width)} ${Math.ceil(laid.height)}`, role: "group",
                             "aria-label": figure.getAttribute("aria-label") || "SOP flow chart"});
    const defs = make("defs", {}, svg);
    for (const kind of ["plain", "taken"]) {
      const marker = make("marker", {id: `${uid}-arrow-${kind}`, viewBox: "0 0 10 10", refX: "11", refY: "5",
                                     markerWidth: "9", markerHeight: "9", markerUnits: "userSpaceOnUse",
                                     orient: "auto-start-reverse"}, defs);
      make("path", {d: "M0,0.5 L10,5 L0,9.5 z", class: `arrowhead ${kind}`}, marker);
    }
    const edgesById = Object.fromEntries(graph.edges.map((e) => [e.id, e]));
    const edgeLayer = make("g", {class: "edges"}, svg);
    const labelLayer = make("g", {class: "edge-labels"}, svg);
    for (const le of laid.edges) {
      const e = edgesById[le.id];
      const taken = e ? e.visited : graph.visited.includes(graph.start);
      for (const s of le.sections || []) {
        const points = [s.startPoint, ...(s.bendPoints || []), s.endPoint];
        const mark = e && e.mark ? " mark-" + e.mark : "";
        make("path", {d: path(points), class: "edge" + (taken ? " taken" : "") + (e ? "" : " entry") + mark,
                      "data-edge": le.id, "data-points": points.map((p) => `${p.x},${p.y}`).join(" "),
                      "marker-end": `url(#${uid}-arrow-${taken ? "taken" : "plain"})`}, edgeLayer);
      }
      for (const l of le.labels || []) {
        const spec = size.labels[le.id];
        const g = make("g", {class: "edge-label" + (taken ? " taken" : ""), "data-edge": le.id,
                             transform: `translate(${l.x},${l.y})`}, labelLayer);
        make("rect", {class: "edge-label-box", width: l.width, height: l.height, rx: 3}, g);
        const text = make("text", {class: "edge-label", x: l.width / 2, "text-anchor": "middle"}, g);
        spec.lines.forEach((line, i) => {
          make("tspan", {x: l.width / 2, y: 12 + i * LABEL_LINE}, text).textContent = line;
        });
      }
    }
    const nodeLayer = make("g", {class: "nodes"}, svg);
    const byId = Object.fromEntries(graph.nodes.map((n) => [n.id, n]));
    for (const c of laid.children) {
      if (c.id === START) {
        make("circle", {class: "start-dot", cx: c.x + 7, cy: c.y + 7, r: 7}, nodeLayer);
        continue;
      }
      const n = byId[c.id], box = size.boxes[c.id];
      const classes = ["node", "type-" + n.type];
      if (n.visited) classes.push("visited");
      if (n.current) classes.push("current");
      if (n.start) classes.push("start");
      if (n.mark) classes.push("mark-" + n.mark);
      const state = n.current ? ", the concern is here now" : n.visited ? ", passed" : "";
      const g = make("g", {class: classes.join(" "), "data-step": n.id, transform: `translate(${c.x},${c.y})`,
                           tabindex: "0", role: "img", "aria-roledescription": "step", "aria-label": `${n.label}: ${n.summary}${state}`}, nodeLayer);
      shape(n, c.width, c.height, g);
      const title = make("text", {class: "title", "text-anchor": "middle"}, g);
      box.title.forEach((line, i) => {
        make("tspan", {x: c.width / 2, y: PAD_Y + 13 + i * TITLE_LINE}, title).textContent = line;
      });
      const summary = make("text", {class: "summary", "text-anchor": "middle"}, g);
      const top = PAD_Y + box.title.length * TITLE_LINE + GAP;
      box.summary.forEach((line, i) => {
        make("tspan", {x: c.width / 2, y: top + 11 + i * SUMMARY_LINE}, summary).textContent = line;
      });
      if (n.visited && !n.current) {
        const badge = make("g", {class: "badge visited", transform: `translate(${c.width - 2},2)`}, g);
        make("circle", {r: 7}, badge);
        make("path", {d: "M-3.2,0.2 L-1,2.5 L3.2,-2.4"}, badge);
      }
      if (n.mark) {
        const y = top + 11 + box.summary.length * SUMMARY_LINE;
        make("text", {class: "mark", "text-anchor": "middle", x: c.width / 2, y}, g).textContent = n.mark;
      }
    }
    return svg;
  }

  function showDetails(figure, graph, nodeEl, pinned) {
    const n = graph.nodes.find((x) => x.id === nodeEl.dataset.step);
    if (!n) return;
    let tip = figure.querySelector(".sop-chart-tip");
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "sop-chart-tip";
      tip.setAttribute("role", "status");
      figure.appendChild(tip);
    }
    tip.replaceChildren();
    const head = document.createElement("strong");
    head.textContent = n.label;
    tip.appendChild(head);
    const state = n.current ? "the concern is here now" : n.visited ? "the concern passed this step" : "";
    if (state || n.mark) {
      const p = document.createElement("p");
      p.className = "state" + (n.current ? " current" : n.visited ? " visited" : "");
      p.textContent = [state, n.mark].filter(Boolean).join(" · ");
      tip.appendChild(p);
    }
    const table = document.createElement("dl");
    for (const [key, value] of n.details) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = key; dd.textContent = value;
      table.append(dt, dd);
    }
    if (n.outcomes.length) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = n.outcomes.length === 1 && !n.outcomes[0].outcome ? "then" : "outcomes";
      const list = document.createElement("ul");
      for (const o of n.outcomes) {
        const li = document.createElement("li");
        li.textContent = o.outcome ? `${o.outcome} → ${o.target_label}` : o.target_label;
        list.appendChild(li);
      }
      dd.appendChild(list);
      table.append(dt, dd);
    }
    tip.appendChild(table);
    tip.dataset.step = n.id;
    tip.dataset.pinned = pinned ? "true" : "false";
    tip.hidden = false;
    const f = figure.getBoundingClientRect(), r = nodeEl.getBoundingClientRect();
    const left = Math.max(0, Math.min(r.left - f.left, f.width - tip.offsetWidth));
    tip.style.left = `${left}px`;
    tip.style.top = `${r.bottom - f.top + 6}px`;
  }

  function hideDetails(figure, force) {
    const tip = figure.querySelector(".sop-chart-tip");
    if (tip && (force || tip.dataset.pinned !== "true")) tip.hidden = true;
  }

  function wire(figure, graph, svg) {
    svg.addEventListener("pointerover", (ev) => {
      const node = ev.target.closest(".node");
      if (node) showDetails(figure, graph, node, false);
    });
    svg.addEventListener("pointerout", (ev) => {
      const node = ev.target.closest(".node");
      if (node && !node.contains(ev.relatedTarget)) hideDetails(figure, false);
    });
    svg.addEventListener("focusin", (ev) => {
      const node = ev.target.closest(".node");
      if (node) showDetails(figure, graph, node, false);
    });
    svg.addEventListener("focusout", () => hideDetails(figure, false));
    svg.addEventListener("click", (ev) => {
      const node = ev.target.closest(".node");
      if (node) showDetails(figure, graph, node, true);
      else hideDetails(figure, true);
    });
    svg.addEventListener("keydown", (ev) => {
      const node = ev.target.closest(".node");
      if (node && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); showDetails(figure, graph, node, true); }
      if (ev.key === "Escape") hideDetails(figure, true);
    });
  }

  function place(figure, graph, size, laid) {
    const canvas = figure.querySelector(".sop-chart-canvas");
    const svg = render(figure, graph, size, laid);
    canvas.replaceChildren(svg);
    wire(figure, graph, svg);
    figure.classList.add("drawn");
    // A chart wider than its box scrolls: bring the current step (else the start) into view.
    const focus = svg.querySelector(".node.current") || svg.querySelector(".node.start");
    const scrolls = canvas.scrollWidth > canvas.clientWidth;
    figure.classList.toggle("scrolls", scrolls);
    if (focus && scrolls) {
      const c = canvas.getBoundingClientRect(), r = focus.getBoundingClientRect();
      canvas.scrollLeft += r.left - c.left - (c.width - r.width) / 2;
    }
    const list = figure.querySelector(".sop-chart-list");
    if (list && listsOpened.has(figure.id)) list.open = true;
    figure.dispatchEvent(new CustomEvent("sop-chart:drawn", {bubbles: true}));
  }

  function draw(figure) {
    if (figure.dataset.chartState) return;
    figure.dataset.chartState = "drawing";
    const graph = JSON.parse(figure.querySelector(".sop-chart-data").textContent);
    // On a phone, titles wrap sooner so the chart needs less sideways scrolling.
    const titleWidth = figure.clientWidth < 560 ? NARROW_TITLE_WIDTH : TITLE_WIDTH;
    const key = shapeKey(graph, titleWidth);
    const known = layouts.get(key);
    if (known && known.laid) {
      place(figure, graph, known.size, known.laid);
      figure.dataset.chartState = "drawn";
      return;
    }
    const m = measurer(figure);
    const size = sized(graph, m, titleWidth);
    m.done();
    elk = elk || new ELK();
    const entry = known || {size, pending: elk.layout(elkGraph(graph, size))};
    layouts.set(key, entry);
    entry.pending.then((laid) => {
      entry.laid = laid;
      if (!figure.isConnected) return;
      place(figure, graph, entry.size, laid);
      figure.dataset.chartState = "drawn";
    }).catch((err) => {
      layouts.delete(key);
      figure.dataset.chartState = "failed";
      console.error("the flow chart could not be laid out", err);
    });
  }

  function drawAll(root) {
    if (root.matches && root.matches("[data-sop-chart]")) draw(root);
    if (root.querySelectorAll) root.querySelectorAll("[data-sop-chart]").forEach(draw);
  }

  // Charts swapped in later (htmx polls replace the concern page's chart) are drawn as they arrive, before the
  // browser paints them when their layout is known already.
  new MutationObserver((records) => {
    for (const record of records) record.addedNodes.forEach((node) => { if (node.nodeType === 1) drawAll(node); });
  }).observe(document.documentElement, {childList: true, subtree: true});
  document.addEventListener("toggle", (ev) => {
    const figure = ev.target.closest && ev.target.closest("[data-sop-chart]");
    if (!figure || !ev.target.classList.contains("sop-chart-list") || !figure.classList.contains("drawn")) return;
    if (ev.target.open) listsOpened.add(figure.id); else listsOpened.delete(figure.id);
  }, true);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") document.querySelectorAll("[data-sop-chart]").forEach((f) => hideDetails(f, true));
  });
  drawAll(document);
})();
