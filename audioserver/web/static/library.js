// Plays library rows in place, so a page of sounds can be auditioned
// without opening each: one shared <audio>, one row at a time. The row
// playing is marked and shows how far it has got; pressed again it pauses.
// Each row's button carries what it plays in data-src (see list.html).
"use strict";

function playRowsWith(player, status) {
  let current = null;  // the button whose row has the player

  function show(button, state) {  // "playing", "paused" or "stopped"
    const row = button.closest("tr");
    const playing = state === "playing";
    row.classList.toggle("playing", playing);
    row.classList.toggle("paused", state === "paused");
    button.setAttribute("aria-pressed", String(playing));
    button.setAttribute("aria-label", `${playing ? "Pause" : "Play"} ${button.dataset.name}`);
    const bar = row.querySelector("progress");
    bar.hidden = state === "stopped";
    if (state === "stopped") bar.value = 0;
  }

  function stop() {
    if (!current) return;
    player.pause();
    show(current, "stopped");
    current = null;
  }

  function cannotPlay(error) {
    // A pause() before play() began rejects with AbortError: that is no fault.
    if (!current || (error && error.name === "AbortError")) return;
    current.closest("tr").classList.add("unplayable");
    status.textContent = `This browser cannot play ${current.dataset.name}; open it to download it.`;
    stop();
  }

  function toggle(button) {
    if (button === current) {
      if (player.paused) player.play().catch(cannotPlay);
      else player.pause();
      return;
    }
    stop();
    current = button;
    button.closest("tr").classList.remove("unplayable");
    player.src = button.dataset.src;
    show(button, "paused");
    player.play().catch(cannotPlay);
  }

  player.addEventListener("playing", () => current && show(current, "playing"));
  player.addEventListener("pause", () => current && show(current, "paused"));
  player.addEventListener("ended", stop);
  player.addEventListener("error", () => cannotPlay(player.error));
  player.addEventListener("timeupdate", () => {
    if (!current || !Number.isFinite(player.duration) || player.duration <= 0) return;
    current.closest("tr").querySelector("progress").value = player.currentTime / player.duration;
  });
  document.querySelectorAll("table.library button.play").forEach((button) => {
    button.addEventListener("click", () => toggle(button));
  });
}

// A page without rows (an empty library, a filter matching nothing) has no player.
const rowPlayer = document.getElementById("row-player");
if (rowPlayer) playRowsWith(rowPlayer, document.getElementById("row-player-status"));
