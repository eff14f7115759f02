// Uploads each chosen or dropped file on its own request, so every file
// gets its own progress bar and its own answer. Without JavaScript the form
// posts as usual and the server redirects to the file's page.
"use strict";

const form = document.getElementById("upload-form");
const input = document.getElementById("file");
const dropzone = document.getElementById("dropzone");
const list = document.getElementById("uploads");

function humanSize(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function row(file) {
  const item = document.createElement("li");
  const name = document.createElement("span");
  name.className = "file-name";
  name.textContent = file.name;  // text, never markup: names may contain "<"
  const bar = document.createElement("progress");
  bar.max = file.size || 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Upload of ${file.name}`);
  const status = document.createElement("span");
  status.className = "status";
  status.textContent = `0 of ${humanSize(file.size)} (0%)`;
  item.append(name, bar, status);
  list.append(item);
  return { item, bar, status };
}

function answerDetail(xhr) {
  try {
    return JSON.parse(xhr.responseText).detail || `${xhr.status} ${xhr.statusText}`;
  } catch (error) {
    return `${xhr.status} ${xhr.statusText}`;
  }
}

function upload(file) {
  const { item, bar, status } = row(file);
  const body = new FormData();
  body.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.setRequestHeader("Accept", "application/json");
  xhr.upload.addEventListener("progress", (event) => {
    if (!event.lengthComputable) return;
    // The form adds a few hundred bytes of its own: show the file's share.
    const sent = Math.min(file.size, Math.round(event.loaded * file.size / event.total));
    bar.value = sent;
    status.textContent = `${humanSize(sent)} of ${humanSize(file.size)} (${Math.floor(100 * event.loaded / event.total)}%)`;
  });
  xhr.addEventListener("load", () => {
    if (xhr.status === 201) {
      bar.value = bar.max;
      const link = document.createElement("a");
      link.href = xhr.getResponseHeader("Location");
      link.textContent = "Open";
      status.textContent = `${humanSize(file.size)} (100%) · stored · `;
      status.append(link);
      item.classList.add("done");
    } else {
      status.textContent = answerDetail(xhr);
      item.classList.add("failed");
    }
  });
  xhr.addEventListener("error", () => {
    status.textContent = "The connection to the server was lost; nothing was stored.";
    item.classList.add("failed");
  });
  xhr.send(body);
}

function uploadAll(files) {
  Array.from(files).forEach(upload);
  form.reset();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  uploadAll(input.files);
});

["dragenter", "dragover"].forEach((type) => dropzone.addEventListener(type, (event) => {
  event.preventDefault();
  dropzone.classList.add("dragging");
}));
["dragleave", "drop"].forEach((type) => dropzone.addEventListener(type, () => {
  dropzone.classList.remove("dragging");
}));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  uploadAll(event.dataTransfer.files);
});
