// The example page: loads a model directory (?model=URL, default ./model/) with the recblocks
// browser bundle and shows the top-k items for a typed session. ?backend=wasm|cpu|webgl|auto.
import { loadModel } from "./dist/recblocks.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const modelUrl = params.get("model") || "./model/";
const backend = params.get("backend") || "auto";

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "muted";
}

function describeBackend(b) {
  const extras = [];
  if (b.backend === "wasm") {
    if (b.simd !== undefined) extras.push(b.simd ? "SIMD" : "no SIMD");
    if (b.multithread !== undefined) extras.push(b.multithread ? "multi-threaded" : "single thread");
  }
  return `${b.backend}${extras.length ? ` (${extras.join(", ")})` : ""} — ${b.reason}`;
}

function render(answer, ms) {
  const body = $("results");
  body.replaceChildren();
  const max = Math.max(...answer.scores.map((s) => Math.abs(s)), 1e-9);
  const min = Math.min(...answer.scores, 0);
  answer.items.forEach((item, i) => {
    const s = answer.scores[i];
    const tr = document.createElement("tr");
    tr.dataset.item = item;
    tr.dataset.score = String(s);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${Math.max(2, (100 * (s - min)) / (max - min || 1))}%`;
    for (const [text, cls] of [[String(i + 1), ""], [item, ""], [s.toFixed(4), "num"]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    const td = document.createElement("td");
    td.append(bar);
    tr.append(td);
    body.append(tr);
  });
  const unk = $("unknown");
  unk.hidden = answer.unknownItems.length === 0;
  unk.textContent = `Not known to the model (skipped): ${answer.unknownItems.join(", ")}`;
  $("timing").textContent = answer.items.length
    ? `${answer.items.length} items in ${ms.toFixed(1)} ms.`
    : "No answer: the session has no item the model knows.";
  $("answer").hidden = false;
  document.body.dataset.answered = String(Number(document.body.dataset.answered || 0) + 1);
}

async function main() {
  $("model-url").textContent = modelUrl;
  let rec;
  try {
    rec = await loadModel(modelUrl, { backend });
  } catch (e) {
    const issues = e.issues ? "\n" + e.issues.map((i) => `${i.message}${i.hint ? `\nhint: ${i.hint}` : ""}`).join("\n") : "";
    setStatus(`Could not load the model: ${e.message}${issues}`, true);
    $("backend").textContent = "–";
    document.body.dataset.error = "1";
    return;
  }
  window.recommender = rec; // for the console and tests
  $("backend").textContent = describeBackend(rec.backend);
  $("model-name").textContent = rec.name ?? "(unnamed)";
  $("model-size").textContent = `${rec.recommender.vocab.numValues} items · ${rec.parameters.toLocaleString("en")} parameters · sessions up to ${rec.maxSequenceLength} items`;
  setStatus("Ready. Type a session, or click popular items to add them.");
  const popular = $("popular");
  popular.append("popular: ");
  for (const item of rec.popularItems(8)) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = item;
    b.addEventListener("click", () => {
      const s = $("session");
      s.value = s.value.trim() ? `${s.value.replace(/[,\s]+$/, "")}, ${item}` : item;
    });
    popular.append(b);
  }
  for (const id of ["session", "k", "exclude-seen", "recommend"]) $(id).disabled = false;
  $("form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const items = $("session").value.split(",").map((s) => s.trim()).filter(Boolean);
    const k = Math.max(1, Number($("k").value) || 10);
    const t0 = performance.now();
    try {
      const answer = rec.recommend({ items, k, excludeSeen: $("exclude-seen").checked });
      window.lastAnswer = answer;
      render(answer, performance.now() - t0);
    } catch (e) {
      setStatus(`Could not recommend: ${e.message}`, true);
    }
  });
  document.body.dataset.ready = "1";
}

main();
