// The waveform under the player: drawn from the server's peaks, with the
// playhead moving over it; click or arrow keys to seek.
"use strict";

const player = document.querySelector(".player");
const audio = document.getElementById("audio");
const canvas = document.getElementById("waveform");
const statusLine = document.getElementById("waveform-status");
const SEEK_STEP = 5;  // seconds per arrow key
let peaks = null;

function duration() {
  return Number.isFinite(audio.duration) ? audio.duration : Number(player.dataset.duration);
}

function draw() {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  context.clearRect(0, 0, width, height);
  const styles = getComputedStyle(canvas);
  const played = duration() ? audio.currentTime / duration() : 0;
  if (peaks && peaks.length) {
    const middle = height / 2, scale = middle / 32768;
    for (let x = 0; x < width; x += 1) {
      const index = Math.floor(x * peaks.length / width);
      const low = peaks.data[2 * index], high = peaks.data[2 * index + 1];
      context.fillStyle = x / width < played ? styles.getPropertyValue("--played") : styles.getPropertyValue("--wave");
      context.fillRect(x, middle - high * scale, 1, Math.max(1, (high - low) * scale));
    }
  }
  context.fillStyle = styles.getPropertyValue("--playhead");
  context.fillRect(Math.round(played * width) - 1, 0, 2, height);
  canvas.setAttribute("aria-valuenow", audio.currentTime.toFixed(1));
  canvas.setAttribute("aria-valuetext", `${audio.currentTime.toFixed(1)} of ${duration().toFixed(1)} seconds`);
}

function seek(seconds) {
  audio.currentTime = Math.min(Math.max(0, seconds), duration());
  draw();
}

canvas.addEventListener("click", (event) => {
  const box = canvas.getBoundingClientRect();
  seek((event.clientX - box.left) / box.width * duration());
});
canvas.addEventListener("keydown", (event) => {
  const moves = { ArrowLeft: -SEEK_STEP, ArrowRight: SEEK_STEP, ArrowDown: -SEEK_STEP, ArrowUp: SEEK_STEP };
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
["timeupdate", "seeked", "loadedmetadata", "pause"].forEach((type) => audio.addEventListener(type, draw));
window.addEventListener("resize", draw);

fetch(player.dataset.peaksUrl, { headers: { Accept: "application/json" } })
  .then((response) => response.ok ? response.json() : response.json().then((problem) => { throw new Error(problem.detail); }))
  .then((data) => { peaks = data; draw(); })
  .catch((error) => { statusLine.textContent = `No waveform: ${error.message}`; draw(); });
draw();
