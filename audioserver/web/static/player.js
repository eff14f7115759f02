// The waveform under the player: drawn from the server's peaks, with the
// playhead moving over it. Click or drag to seek; with the waveform focused,
// the arrow keys step, Home and End jump, Space plays or pauses.
"use strict";

const player = document.querySelector(".player");
const audio = document.getElementById("audio");
const canvas = document.getElementById("waveform");
const statusLine = document.getElementById("waveform-status");
const SEEK_STEP = Number(player.dataset.seekStep) || 5;  // seconds per arrow key
let peaks = null;

function duration() {
  return Number.isFinite(audio.duration) ? audio.duration : Number(player.dataset.duration);
}

function clock(seconds) {
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

// The lowest and highest peak among the points under one column of pixels:
// on a narrow screen a column covers several points, none may be skipped.
function column(x, width) {
  const first = Math.floor(x * peaks.length / width);
  const last = Math.max(first + 1, Math.floor((x + 1) * peaks.length / width));
  let low = 0, high = 0;
  for (let index = first; index < last && index < peaks.length; index += 1) {
    low = Math.min(low, peaks.data[2 * index]);
    high = Math.max(high, peaks.data[2 * index + 1]);
  }
  return [low, high];
}

function draw() {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  const styles = getComputedStyle(canvas);
  const colors = ["--axis", "--wave", "--played", "--playhead"].map((name) => styles.getPropertyValue(name));
  const playedWidth = duration() ? Math.min(1, audio.currentTime / duration()) * width : 0;
  const middle = height / 2;
  context.fillStyle = colors[0];
  context.fillRect(0, Math.floor(middle), width, 1);
  if (peaks && peaks.length) {
    const scale = (middle - 2) / 32768;
    for (let x = 0; x < width; x += 1) {
      const [low, high] = column(x, width);
      context.fillStyle = x < playedWidth ? colors[2] : colors[1];
      context.fillRect(x, middle - high * scale, 1, Math.max(1, (high - low) * scale));
    }
  }
  context.fillStyle = colors[3];
  context.fillRect(Math.min(Math.max(0, Math.round(playedWidth) - 1), width - 2), 0, 2, height);
  canvas.setAttribute("aria-valuenow", audio.currentTime.toFixed(1));
  canvas.setAttribute("aria-valuetext", `${clock(audio.currentTime)} of ${clock(duration())}`);
}

function seek(seconds) {
  audio.currentTime = Math.min(Math.max(0, seconds), duration());
  draw();
}

function seekTo(event) {
  const box = canvas.getBoundingClientRect();
  seek((event.clientX - box.left) / box.width * duration());
}

// Pointer events cover mouse, pen and touch; capture keeps a drag going
// when it leaves the canvas.
canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  seekTo(event);
});
canvas.addEventListener("pointermove", (event) => {
  if (canvas.hasPointerCapture(event.pointerId)) seekTo(event);
});

canvas.addEventListener("keydown", (event) => {
  const moves = { ArrowLeft: -SEEK_STEP, ArrowDown: -SEEK_STEP, ArrowRight: SEEK_STEP, ArrowUp: SEEK_STEP,
                  PageDown: -6 * SEEK_STEP, PageUp: 6 * SEEK_STEP };
  if (event.key in moves) seek(audio.currentTime + moves[event.key]);
  else if (event.key === "Home") seek(0);
  else if (event.key === "End") seek(duration());
  else if (event.key === " ") { if (audio.paused) audio.play(); else audio.pause(); }
  else return;
  event.preventDefault();
});

function animate() {
  draw();
  if (!audio.paused) window.requestAnimationFrame(animate);
}
audio.addEventListener("play", animate);
["timeupdate", "seeked", "loadedmetadata", "pause", "ended"].forEach((type) => audio.addEventListener(type, draw));
window.addEventListener("resize", draw);

function problemOf(response) {
  return response.json().then((problem) => { throw new Error(problem.detail); },
                              () => { throw new Error(`${response.status} ${response.statusText}`); });
}

// Playback speed, 0.5x to 2x: one choice for every file, kept in this browser.
const SPEED_KEY = "audioserver.speed";
const speed = document.getElementById("speed");
function setSpeed(rate) {
  if (!Array.from(speed.options).some((option) => Number(option.value) === rate)) return;
  speed.value = String(rate);
  audio.playbackRate = audio.defaultPlaybackRate = rate;
}
setSpeed(Number(localStorage.getItem(SPEED_KEY)) || 1);
speed.addEventListener("change", () => {
  setSpeed(Number(speed.value));
  localStorage.setItem(SPEED_KEY, speed.value);
});
// Some browsers reset the rate when a source loads.
audio.addEventListener("loadedmetadata", () => setSpeed(Number(speed.value)));

// A long file resumes where it was left, as audiobook players do: the
// position is kept in this browser under the file's content hash, so a
// rename keeps it. Near either end there is nothing to resume.
const RESUME_MARGIN = 5;  // seconds
const SAVE_EVERY = 5;  // seconds of playing between saves
const resumeKey = player.dataset.resumeKey && `audioserver.position.${player.dataset.resumeKey}`;
const resumeStatus = document.getElementById("resume-status");
const startOver = document.getElementById("start-over");
let savedAt = 0;
function savePosition() {
  savedAt = audio.currentTime;
  if (audio.currentTime > RESUME_MARGIN && audio.currentTime < duration() - RESUME_MARGIN) {
    localStorage.setItem(resumeKey, audio.currentTime.toFixed(1));
  } else {
    localStorage.removeItem(resumeKey);
  }
}
if (resumeKey) {
  audio.addEventListener("loadedmetadata", () => {
    const position = Number(localStorage.getItem(resumeKey));
    if (position > RESUME_MARGIN && position < duration() - RESUME_MARGIN) {
      audio.currentTime = savedAt = position;
      resumeStatus.textContent = `Resumed at ${clock(position)}, where you stopped.`;
      resumeStatus.hidden = startOver.hidden = false;
      draw();
    }
  }, { once: true });
  audio.addEventListener("timeupdate", () => {
    if (Math.abs(audio.currentTime - savedAt) >= SAVE_EVERY) savePosition();
  });
  ["pause", "seeked"].forEach((type) => audio.addEventListener(type, savePosition));
  audio.addEventListener("ended", () => localStorage.removeItem(resumeKey));
  window.addEventListener("pagehide", savePosition);
  startOver.addEventListener("click", () => {
    seek(0);
    localStorage.removeItem(resumeKey);
    resumeStatus.hidden = startOver.hidden = true;
  });
}

// The note that a playable copy is being made goes once the player has it.
const previewStatus = document.getElementById("preview-status");
if (previewStatus) {
  ["loadedmetadata", "error"].forEach((type) => audio.addEventListener(type, () => {
    previewStatus.hidden = true;
  }));
  if (audio.readyState >= HTMLMediaElement.HAVE_METADATA) previewStatus.hidden = true;
}

// A file the browser cannot play, even as a preview: say so in words, with
// the server's reason when it gave one, and offer the download (in the page).
audio.addEventListener("error", () => {
  const status = document.getElementById("player-status");
  status.hidden = false;
  fetch(audio.currentSrc || audio.src, { headers: { Accept: "application/json", Range: "bytes=0-0" } })
    .then((response) => response.ok ? null : problemOf(response))
    .catch((error) => {
      document.getElementById("player-problem").textContent =
        `This file cannot be played in the browser: ${error.message.replace(/\.$/, "")}.`;
    });
});

fetch(player.dataset.peaksUrl, { headers: { Accept: "application/json" } })
  .then((response) => response.ok ? response.json() : problemOf(response))
  .then((data) => {
    peaks = data;
    statusLine.hidden = true;
    canvas.dataset.state = "ready";
    draw();
  })
  .catch((error) => {
    statusLine.textContent = `No waveform: ${error.message}`;
    canvas.dataset.state = "failed";
    draw();
  });
draw();
