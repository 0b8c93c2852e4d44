"""``hashkit serve``: the JSON API with FastAPI's test client, on codes of the session's tiny SEMICON run.

Searches must equal ``hashkit search`` on the same code files; bad uploads get a 4xx (never a 500); nothing
outside the image folder is ever read.
"""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from hashkit.cli.main import main  # noqa: E402

pytestmark = pytest.mark.slow  # uses the session's tiny demo run


@pytest.fixture(scope="module")
def client(served):
    from hashkit.serve.app import create_app
    from hashkit.serve.service import load_service

    _, photos, files = served
    service = load_service([files[12], files[24]], photos, log=lambda _: None)
    return TestClient(create_app(service))


def cli_search(capsys, *args) -> list[dict]:
    capsys.readouterr()
    assert main(["search", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def plain(results: list[dict]) -> list[tuple]:
    return [(r["id"], r["path"], r["distance"]) for r in results]


def test_search_by_id_code_and_radius_equal_cli(served, client, capsys):
    from hashkit.codes.code_file import load_code_file

    _, _, files = served
    for bits in (12, 24):
        expected = cli_search(capsys, files[bits], "--query", files[bits], "-k", 5)
        stored = load_code_file(files[bits])
        assert len(expected) == len(stored) == 20
        for item_id, want in zip(stored.ids.tolist(), expected):
            got = client.get(f"/api/search/id/{item_id}", params={"bits": bits, "k": 5}).json()
            assert got["bits"] == bits and plain(got["queries"][0]["results"]) == plain(want["results"])
        hexes = [bytes(row.tolist()).hex() for row in stored.codes]
        got = []
        for start in (0, 10):  # a batch of 10 codes per request
            answer = client.post("/api/search/code", json={"codes": hexes[start:start + 10], "bits": bits, "k": 5})
            got += [plain(q["results"]) for q in answer.json()["queries"]]
        assert got == [plain(e["results"]) for e in expected]
        ball = cli_search(capsys, files[bits], "--query", files[bits], "--radius", 2)
        for item_id, want in zip(stored.ids.tolist()[:5], ball):
            got = client.get(f"/api/search/id/{item_id}", params={"bits": bits, "radius": 2}).json()
            assert plain(got["queries"][0]["results"]) == plain(want["results"])
    # ±1 lists are codes too
    stored = load_code_file(files[12])
    from hashkit.codes.packing import unpack_codes

    signs = unpack_codes(stored.codes[:1], 12)[0].tolist()
    by_list = client.post("/api/search/code", json={"codes": [signs], "bits": 12, "k": 5}).json()
    by_id = client.get(f"/api/search/id/{int(stored.ids[0])}", params={"bits": 12, "k": 5}).json()
    assert plain(by_list["queries"][0]["results"]) == plain(by_id["queries"][0]["results"])


def test_search_by_uploaded_images_equals_cli(served, client, capsys):
    _, photos, files = served
    images = sorted(photos.rglob("*.png"))[::7][:3]
    expected = [cli_search(capsys, files[24], "--query", path, "-k", 6)[0] for path in images]
    upload = [("image", (p.name, p.read_bytes(), "image/png")) for p in images]
    answer = client.post("/api/search/image", files=upload, data={"bits": "24", "k": "6", "attention": "true"})
    assert answer.status_code == 200, answer.text
    queries = answer.json()["queries"]
    assert [q["query"] for q in queries] == [p.name for p in images]
    assert [plain(q["results"]) for q in queries] == [plain(e["results"]) for e in expected]
    first = queries[0]
    assert [a["name"] for a in first["attention"]] == ["input", "stage1", "stage2", "stage3"]
    assert all(a["image"].startswith("data:image/png;base64,") for a in first["attention"])
    result = first["results"][0]
    assert result["label"] == result["path"].split("/")[0] and result["image"] == f"/api/images/{result['id']}?bits=24"


def test_index_items_and_images(served, client):
    _, photos, files = served
    info = client.get("/api/index").json()
    assert [c["bits"] for c in info["code_lengths"]] == [12, 24]
    assert all(c["num_codes"] == 20 and c["image_search"] and c["attention_maps"] == ["stage1", "stage2", "stage3"]
               and c["batch_dependent"] for c in info["code_lengths"])
    assert client.get("/api/health").json() == {"status": "ok"}
    items = client.get("/api/items", params={"bits": 12, "offset": 18, "limit": 4}).json()["items"]
    assert [i["id"] for i in items] == [18, 19, 0, 1]  # wraps around
    picture = client.get(f"/api/images/{items[0]['id']}", params={"bits": 12})
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content == (photos / items[0]["path"]).read_bytes()
    assert picture.headers["x-content-type-options"] == "nosniff"
    page = client.get("/")
    assert page.status_code == 200 and 'id="upload"' in page.text and "script-src 'self'" in \
        page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200


def _png(size=(20, 20)) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_requests_get_4xx_never_500(client, served):
    from hashkit.serve.app import create_app
    from hashkit.serve.service import SearchService, Settings

    service = client.app.fastapi.state.service

    def upload(data, name="x.png", **form):
        return client.post("/api/search/image", files={"image": (name, data, "image/png")}, data=form)

    cases = {
        "not an image": (upload(b"%PDF-1.4 not an image at all"), 415),
        "truncated": (upload(_png()[:60]), 400),
        "empty": (upload(b""), 400),
        "json instead of a form": (client.post("/api/search/image", json={"image": "x"}), 422),
        "k too large": (upload(_png(), k="100000"), 400),
        "k zero": (client.get("/api/search/id/0", params={"k": 0}), 400),
        "radius too large": (client.get("/api/search/id/0", params={"radius": 99}), 400),
        "unknown code length": (upload(_png(), bits="32"), 404),
        "unknown id": (client.get("/api/search/id/12345"), 404),
        "not hex": (client.post("/api/search/code", json={"codes": ["zz"]}), 400),
        "wrong length": (client.post("/api/search/code", json={"codes": ["ff"], "bits": 24}), 400),
        "not ±1": (client.post("/api/search/code", json={"codes": [[0.5] * 12]}), 400),
        "too many images": (client.post("/api/search/image", files=[("image", ("a.png", _png(), "image/png"))] * 17),
                            400),
        "malformed json": (client.post("/api/search/code", content=b"{", headers={"content-type":
                                                                                  "application/json"}), 422),
    }
    for name, (response, status) in cases.items():
        assert response.status_code == status, (name, response.status_code, response.text)
        assert isinstance(response.json()["detail"], (str, list)), name
    assert "not an image" in cases["not an image"][0].json()["detail"]

    small = TestClient(create_app(SearchService(service.collection, service.encoders,
                                                Settings(max_pixels=300, max_request_bytes=20_000))))
    big = small.post("/api/search/image", files={"image": ("b.png", _png((40, 40)), "image/png")})
    assert big.status_code == 413 and "pixels" in big.json()["detail"]
    one = [("image", ("a.png", _png((15, 15)), "image/png"))]  # 225 pixels: one fits in 300, two do not
    assert small.post("/api/search/image", files=one).status_code == 200
    assert small.post("/api/search/image", files=one * 2).status_code == 413
    declared = small.post("/api/search/image", files={"image": ("b.png", b"\0" * 30_000, "image/png")})
    assert declared.status_code == 413

    def stream():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"\0" * 4000

    chunked = small.post("/api/search/image", content=stream(),
                         headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert chunked.status_code == 413 and "larger than 20,000 bytes" in chunked.json()["detail"]
    assert small.post("/api/search/code", json={"codes": ["000"]}).status_code == 400  # small bodies still pass


def test_no_path_traversal(served, tmp_path):
    from hashkit.codes.code_file import load_code_file, save_code_file
    from hashkit.serve.app import create_app
    from hashkit.serve.service import load_service

    base, photos, files = served
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png())
    root = tmp_path / "root"
    (root / "cls").mkdir(parents=True)
    (root / "cls" / "ok.png").write_bytes(_png())
    os.symlink(secret, root / "cls" / "link.png")
    original = load_code_file(files[12])
    paths = ["cls/ok.png", "../secret.png", str(secret), "cls/link.png", "cls/../../secret.png"]
    tampered = tmp_path / "tampered.safetensors"
    save_code_file(tampered, original.codes[:5], 12, paths=paths,
                   extra={"run_dir": original.metadata["extra.run_dir"]})
    client = TestClient(create_app(load_service([tampered], root, log=lambda _: None)))
    assert client.get("/api/images/0").status_code == 200
    for item_id in (1, 2, 3, 4):
        response = client.get(f"/api/images/{item_id}")
        assert response.status_code == 404 and "outside the image folder" in response.json()["detail"]
        assert response.content != secret.read_bytes()
    for url in ("/api/images/..%2F..%2Fsecret.png", "/api/images/../secret.png", "/static/..%2F..%2Fapp.py",
                "/static/../../pyproject.toml", "/static/%2e%2e%2fapp.py", "/api/images/0/../../secret.png"):
        response = client.get(url)
        assert response.status_code in (404, 422), url
        assert response.content != secret.read_bytes()


def test_serving_a_run_directory_encodes_the_folder(served, semicon_tiny_run):
    from hashkit.codes.code_file import load_code_file
    from hashkit.serve.service import load_service

    _, photos, files = served
    service = load_service([semicon_tiny_run], photos, log=lambda _: None)
    for bits in (12, 24):
        index, stored = service.collection.index(bits), load_code_file(files[bits])
        assert index.paths == stored.paths and (index.codes == stored.codes.numpy()).all()
    assert sorted(service.encoders) == [12, 24]


def test_without_a_model_search_by_image_is_refused(served, tmp_path):
    from hashkit.codes.code_file import load_code_file, save_code_file
    from hashkit.serve.app import create_app
    from hashkit.serve.service import load_service

    _, photos, files = served
    original = load_code_file(files[12])
    orphan = tmp_path / "orphan.safetensors"
    save_code_file(orphan, original.codes, 12, paths=original.paths, extra={"run_dir": str(tmp_path / "gone")})
    notes = []
    client = TestClient(create_app(load_service([orphan], photos, log=notes.append)))
    assert "search by image is off" in notes[0]
    assert client.get("/api/index").json()["code_lengths"][0]["image_search"] is False
    response = client.post("/api/search/image", files={"image": ("a.png", _png(), "image/png")})
    assert response.status_code == 404 and "no model is loaded" in response.json()["detail"]
    assert client.get("/api/search/id/3").status_code == 200


def test_serve_command_binds_localhost_by_default(served, monkeypatch, capsys):
    import uvicorn

    _, photos, files = served
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: seen.update(app=app, host=host, port=port))
    assert main(["serve", str(files[12]), "--images", str(photos), "--port", "8123"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert TestClient(seen["app"]).get("/api/search/id/0", params={"k": 3}).status_code == 200
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out
    assert main(["serve", str(files[12]) + ".missing", "--images", str(photos)]) == 2
    assert main(["serve", str(files[12]), "--images", str(photos / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_radius_answers_are_capped_at_max_k(client):
    from hashkit.serve.service import SearchService, Settings

    service = client.app.fastapi.state.service
    capped = SearchService(service.collection, service.encoders, Settings(max_k=3, default_k=3))
    whole = service.search_id(0, bits=12, radius=12)["queries"][0]  # the ball of radius L holds every item
    cut = capped.search_id(0, bits=12, radius=12)["queries"][0]
    assert len(whole["results"]) == 20 and not whole["truncated"]
    assert cut["results"] == whole["results"][:3] and cut["truncated"]
