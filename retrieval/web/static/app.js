// The job page: polls the job, then shows its proteins, one protein's predictions with their
// evidence and GO graph, text search and catalogue scoring. Every value from the server is put
// into the page as text (textContent), never as HTML.
"use strict";

const section = document.getElementById("job");
const jobId = section ? section.dataset.job : null;
const ASPECTS = {MFO: "Molecular function", BPO: "Biological process", CCO: "Cellular component", "": "Functions"};

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({error: response.statusText}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = false;
}

async function poll() {
  let job;
  try {
    job = await api(`/api/jobs/${jobId}`);
  } catch (err) {
    showError(err.message);
    return;
  }
  const share = job.proteins ? job.done / job.proteins : 0;
  document.getElementById("bar").style.width = `${Math.round(100 * share)}%`;
  document.querySelector(".progress").setAttribute("aria-valuenow", job.done);
  document.getElementById("progress-text").textContent =
    job.state === "done" ? `done: ${job.proteins} proteins` : `${job.state}: ${job.done} of ${job.proteins} proteins`;
  section.dataset.state = job.state;
  if (job.state === "failed") showError(job.error);
  else if (job.state === "done") showResults();
  else setTimeout(poll, 1000);
}

async function showResults() {
  document.getElementById("results").hidden = false;
  const proteins = await api(`/api/jobs/${jobId}/proteins`);
  const list = document.getElementById("protein-list");
  for (const p of proteins) {
    const item = el("li", null, {"data-protein": p.protein_id});
    const button = el("button", p.protein_id, {type: "button", class: "protein"});
    button.addEventListener("click", () => showProtein(p.protein_id));
    item.append(button, el("span", `${p.best} (${p.best_score.toFixed(2)})`, {class: "best"}));
    list.append(item);
  }
  document.getElementById("protein-filter").addEventListener("input", (event) => {
    const needle = event.target.value.toLowerCase();
    for (const item of list.children) item.hidden = !item.textContent.toLowerCase().includes(needle);
  });
  if (proteins.length) showProtein(proteins[0].protein_id);
}

function uniprotLink(id) {
  // UniProt accessions (uniprot.org/help/accession_numbers)
  const accession = /^([OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9]([A-Z][A-Z0-9]{2}[0-9]){1,2})$/;
  if (!id || !accession.test(id)) return null;
  return el("a", id, {href: `https://www.uniprot.org/uniprotkb/${encodeURIComponent(id)}/entry`, target: "_blank", rel: "noopener"});
}

function termLink(id) {
  if (!/^GO:\d{7}$/.test(id)) return el("span", id);
  return el("a", id, {href: `https://amigo.geneontology.org/amigo/term/${id}`, target: "_blank", rel: "noopener"});
}

async function showProtein(protein) {
  for (const item of document.getElementById("protein-list").children)
    item.classList.toggle("current", item.dataset.protein === protein);
  document.getElementById("protein-title").textContent = protein;
  const links = document.getElementById("protein-links");
  links.replaceChildren();
  const own = uniprotLink(protein);
  if (own) links.append("UniProt: ", own);
  const rows = await api(`/api/jobs/${jobId}/predictions?protein=${encodeURIComponent(protein)}`);
  const aspects = document.getElementById("aspects");
  aspects.replaceChildren();
  const filter = document.getElementById("term-filter");
  filter.hidden = false;
  filter.value = "";
  const byAspect = {};
  for (const row of rows) (byAspect[row.aspect] = byAspect[row.aspect] || []).push(row);
  for (const aspect of ["MFO", "BPO", "CCO", ...Object.keys(byAspect)]) {
    if (byAspect[aspect]) aspects.append(predictionTable(aspect, byAspect[aspect]));
    delete byAspect[aspect];
  }
  filter.oninput = () => {
    const needle = filter.value.toLowerCase();
    for (const tr of aspects.querySelectorAll("tbody tr")) tr.hidden = !tr.textContent.toLowerCase().includes(needle);
  };
  drawGraph(protein);
}

function predictionTable(aspect, rows) {
  const wrap = el("div", null, {class: "aspect", "data-aspect": aspect});
  wrap.append(el("h3", ASPECTS[aspect] || aspect));
  const table = el("table", null, {class: "predictions"});
  const columns = [["term_id", "term"], ["name", "name"], ["score", "score"], ["support_protein", "evidence"]];
  const head = el("tr");
  const body = el("tbody");
  columns.forEach(([key, label]) => {
    const th = el("th", label, {"data-key": key, title: "sort"});
    th.addEventListener("click", () => sortBy(body, rows, key));
    head.append(th);
  });
  table.append(el("thead"), body);
  table.tHead.append(head);
  fillRows(body, rows);
  wrap.append(table);
  return wrap;
}

function sortBy(body, rows, key) {
  const descending = body.dataset.sorted === key && body.dataset.order !== "desc";
  rows.sort((a, b) => (a[key] ?? "") < (b[key] ?? "") ? -1 : (a[key] ?? "") > (b[key] ?? "") ? 1 : 0);
  if (descending || (key === "score" && body.dataset.sorted !== key)) rows.reverse();
  body.dataset.sorted = key;
  body.dataset.order = descending || (key === "score" && body.dataset.order !== "desc") ? "desc" : "asc";
  fillRows(body, rows);
}

function fillRows(body, rows) {
  body.replaceChildren();
  for (const row of rows) {
    const tr = el("tr");
    tr.append(el("td", null), el("td", row.name), el("td", null), el("td", null));
    tr.children[0].append(termLink(row.term_id));
    const bar = el("div", null, {class: "scorebar"});
    bar.append(el("div", null, {class: "fill", style: `width:${Math.round(100 * row.score)}%`}), el("span", row.score.toFixed(3)));
    tr.children[2].append(bar);
    tr.children[3].append(evidence(row));
    body.append(tr);
  }
}

function evidence(row) {
  const span = el("span", null, {class: "evidence"});
  if (row.support_protein) {
    const link = uniprotLink(row.support_protein) || el("span", row.support_protein);
    span.append("relative ", link, ` (${Number(row.support_identity).toFixed(0)}% identity)`);
  } else if (row.lent_from) {
    span.append("borrowed from ", termLink(row.lent_from));
  } else {
    span.append(el("span", `towers ${Number(row.tower).toFixed(2)}`, {class: "muted"}));
  }
  return span;
}

async function drawGraph(protein) {
  const box = document.getElementById("graph");
  const graph = await api(`/api/jobs/${jobId}/graph?protein=${encodeURIComponent(protein)}`);
  box.dataset.nodes = graph.nodes.length;
  box.dataset.edges = graph.edges.length;
  document.getElementById("graph-title").hidden = document.getElementById("graph-legend").hidden = !graph.nodes.length;
  if (!window.cytoscape || !graph.nodes.length) return;
  window.goGraph = window.cytoscape({
    container: box,
    elements: graph,
    layout: {name: "dagre", rankDir: "BT", nodeSep: 30, rankSep: 45, padding: 20},
    maxZoom: 1.3,  // a small graph is not blown up to fill the box
    style: [
      {selector: "node", style: {label: "data(name)", "font-size": 10, "text-wrap": "wrap", "text-max-width": 120,
        "background-color": "#bbb", width: 14, height: 14, "text-valign": "bottom", color: "#222"}},
      {selector: "node[score]", style: {"background-color": "mapData(score, 0, 1, #c6dbef, #08306b)"}},
      {selector: "edge", style: {width: 1, "line-color": "#999", "target-arrow-shape": "triangle",
        "target-arrow-color": "#999", "curve-style": "bezier", "arrow-scale": 0.6}},
    ],
  });
}

function setupSearch() {
  document.getElementById("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const table = document.getElementById("search-results");
    try {
      const hits = await api(`/api/jobs/${jobId}/search`, {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({query: document.getElementById("query").value, top: 10})});
      const body = table.tBodies[0];
      body.replaceChildren();
      for (const hit of hits) {
        const tr = el("tr");
        tr.append(el("td", hit.rank), el("td", hit.protein_id), el("td", hit.score.toFixed(3)), el("td", hit.similarity.toFixed(3)));
        body.append(tr);
      }
      table.hidden = false;
    } catch (err) {
      showError(err.message);
    }
  });
  document.getElementById("catalogue-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = document.getElementById("catalogue-results");
    box.replaceChildren(el("p", "scoring …"));
    try {
      const result = await api(`/api/jobs/${jobId}/catalogue`, {method: "POST", body: new FormData(event.target)});
      const table = el("table", null, {class: "catalogue"});
      const head = el("tr");
      head.append(el("th", "function"), el("th", "best proteins"));
      table.append(head);
      result.functions.forEach((f, j) => {
        const ranked = result.proteins.map((p, i) => [p, result.scores[i][j]]).sort((a, b) => b[1] - a[1]).slice(0, 5);
        const tr = el("tr");
        tr.append(el("td", f.name), el("td", ranked.map(([p, s]) => `${p} (${s.toFixed(3)})`).join(", ")));
        table.append(tr);
      });
      box.replaceChildren(table);
    } catch (err) {
      box.replaceChildren(el("p", err.message, {class: "error"}));
    }
  });
}

if (jobId) {
  setupSearch();
  poll();
}
