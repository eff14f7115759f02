"""A stand-in for the original Flask prototype's upload, for bench.py.

It reproduces what POST /upload of huangworld/audioServer (commit 46ec1dc,
audioServer.py) does, no more: Flask, request.files['file'],
secure_filename, file.save into a folder, sf.SoundFile for frames and
samplerate, a dict of metadata in memory, a 301 redirect. No fsync and no
validation beyond what libsndfile's opening does. Its repository has no
licence, so this is written anew rather than copied, and fetched from
nowhere. Run with Flask's threaded server, debug off:

    python bench/prototype.py PORT FOLDER
"""

import os
import sys

import soundfile as sf
from flask import Flask, abort, redirect, request, url_for
from werkzeug.utils import secure_filename

READY_LINE = "prototype serving"


def create_app(folder: str) -> Flask:
    app = Flask(__name__)
    app.config["UPLOAD_FOLDER"] = folder
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024  # as the prototype's
    audios = {}

    @app.route("/upload", methods=["POST"])
    def upload():
        file = request.files["file"]
        if file.filename in audios:
            abort(409)
        filename = secure_filename(file.filename)
        path = os.path.join(app.config["UPLOAD_FOLDER"], filename)
        file.save(path)
        f = sf.SoundFile(path)
        audios[filename] = {"duration (s)": f.frames / f.samplerate}
        return redirect(url_for("download", name=filename), code=301)

    @app.route("/download")
    def download():
        return "", 404  # only for url_for: the bench does not follow the redirect

    return app


def main() -> None:
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    print(READY_LINE, flush=True)
    create_app(folder).run(host="127.0.0.1", port=port, debug=False, threaded=True)


if __name__ == "__main__":
    main()
