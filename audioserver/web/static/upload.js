// Sends each chosen or dropped file on its own request, so every file gets
// its own progress bar and its own answer: a link to its page, or the
// server's reason for refusing it. Without JavaScript the form posts all
// files at once and the server redirects to the new file's page.
"use strict";

const form = document.getElementById("upload-form");
const input = document.getElementById("file");
const dropzone = document.getElementById("dropzone");
const list = document.getElementById("uploads");
const summary = document.getElementById("uploads-summary");
const MAX_SIZE = Number(form.dataset.maxSize);
// A few at a time: the rest wait their turn instead of sharing the bandwidth
// (and the browser's six connections) so thinly that none seems to move.
const PARALLEL = 3;
const waiting = [];
let running = 0, stored = 0, failed = 0, delayed = 0;

function humanSize(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

// Every piece of a name goes in as text, never as markup: names may contain "<".
function row(file) {
  const item = document.createElement("li");
  const name = document.createElement("span");
  name.className = "file-name";
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = file.size || 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Upload of ${file.name}`);
  const status = document.createElement("span");
  status.className = "status";
  status.textContent = `Waiting · ${humanSize(file.size)}`;
  item.append(name, bar, status);
  list.append(item);
  return { file, item, name, bar, status };
}

function showProgress(upload, sent, total) {
  // The form adds a few hundred bytes of its own: show the file's share.
  const bytes = Math.min(upload.file.size, Math.round(sent * upload.file.size / total));
  const percent = Math.floor(100 * sent / total);
  upload.bar.value = bytes;
  upload.status.textContent = `${humanSize(bytes)} of ${humanSize(upload.file.size)} (${percent}%)`;
}

function succeed(upload, location) {
  const link = document.createElement("a");
  link.href = location;
  link.textContent = upload.file.name;
  upload.name.replaceChildren(link);
  upload.bar.value = upload.bar.max;
  upload.status.textContent = `${humanSize(upload.file.size)} (100%) · stored`;
  upload.item.classList.add("done");
  stored += 1;
}

function fail(upload, reason) {
  upload.status.textContent = reason;
  upload.item.classList.add("failed");
  failed += 1;
}

function problemDetail(xhr) {
  try {
    return JSON.parse(xhr.responseText).detail || `${xhr.status} ${xhr.statusText}`;
  } catch (error) {
    return `${xhr.status} ${xhr.statusText}`;
  }
}

function send(upload) {
  running += 1;
  const body = new FormData();
  // The choice of who may see it comes first: the server reads the form in order.
  if (upload.visibility) body.append("visibility", upload.visibility);
  body.append("file", upload.file, upload.file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.setRequestHeader("Accept", "application/json");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf);
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) showProgress(upload, event.loaded, event.total);
  });
  xhr.addEventListener("load", () => {
    if (xhr.status === 201) succeed(upload, xhr.getResponseHeader("Location"));
    else if (xhr.status === 429) retryLater(upload, Number(xhr.getResponseHeader("Retry-After")) || 1);
    else fail(upload, problemDetail(xhr));
  });
  xhr.addEventListener("error", () => fail(upload, "The connection to the server was lost; nothing was stored."));
  xhr.addEventListener("loadend", () => { running -= 1; next(); });
  xhr.send(body);
}

// Over the server's upload rate: wait as long as it says, then send again.
function retryLater(upload, seconds) {
  delayed += 1;
  upload.bar.value = 0;
  upload.status.textContent = `Waiting ${seconds} s: the server asks to slow down`;
  setTimeout(() => { delayed -= 1; waiting.unshift(upload); next(); }, seconds * 1000);
}

function next() {
  while (running < PARALLEL && waiting.length) send(waiting.shift());
  if (running === 0 && !waiting.length && !delayed) report();
}

function report() {
  summary.replaceChildren(`${stored} stored${failed ? `, ${failed} refused` : ""}. `);
  if (stored) {
    const link = document.createElement("a");
    link.href = summary.dataset.libraryUrl;
    link.textContent = "Open the library";
    summary.append(link);
  }
  summary.hidden = false;
}

function uploadAll(files) {
  summary.hidden = true;
  // As chosen when these files were sent, whatever is chosen for the next ones.
  const visibility = form.elements.namedItem("visibility")?.value;
  for (const file of files) {
    const upload = { ...row(file), visibility };
    // The server refuses it too, but only once a limit's worth of bytes has arrived.
    if (file.size > MAX_SIZE) {
      fail(upload, `'${file.name}' is larger than this server accepts (${humanSize(MAX_SIZE)}); nothing was sent`);
    } else {
      waiting.push(upload);
    }
  }
  input.value = "";  // the files only: the visibility chosen stays chosen
  showChosen([]);  // now listed below, with their progress
  next();
}

// What is about to be sent, listed as it is chosen: each name and size.
const chosen = document.getElementById("chosen");
function showChosen(files) {
  const items = Array.from(files, (file) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "file-name";
    name.textContent = file.name;
    const size = document.createElement("span");
    size.className = "file-size";
    size.textContent = humanSize(file.size);
    item.append(name, " ", size);
    if (file.size > MAX_SIZE) {
      item.classList.add("too-large");
      item.append(` · larger than this server accepts (${humanSize(MAX_SIZE)})`);
    }
    return item;
  });
  const total = Array.from(files).reduce((sum, file) => sum + file.size, 0);
  document.getElementById("chosen-files").replaceChildren(...items);
  document.getElementById("chosen-summary").textContent =
    `${files.length} file${files.length === 1 ? "" : "s"} chosen, ${humanSize(total)} in all:`;
  chosen.hidden = files.length === 0;
}
input.addEventListener("change", () => showChosen(input.files));

form.addEventListener("submit", (event) => {
  event.preventDefault();
  uploadAll(input.files);
});

// A file dropped anywhere on the page is uploaded, not opened by the browser.
let depth = 0;  // dragenter and dragleave fire for every child crossed
document.addEventListener("dragenter", (event) => {
  event.preventDefault();
  depth += 1;
  dropzone.classList.add("dragging");
});
document.addEventListener("dragleave", () => {
  depth = Math.max(0, depth - 1);
  if (!depth) dropzone.classList.remove("dragging");
});
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  depth = 0;
  dropzone.classList.remove("dragging");
  if (event.dataTransfer.files.length) uploadAll(event.dataTransfer.files);
});
