"""The Kubernetes manifests in deploy/: valid against Kubernetes' own schema, and agreeing with the image and the app.

Schema: kubernetes-validate ships the OpenAPI-derived JSON schemas (no network); "strict" refuses unknown fields, so
a misspelt or misplaced key fails here rather than being dropped by `kubectl apply`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from service.app import create_app
from service.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
KUBERNETES = "1.33.0"  # the oldest release the manifests promise to work on (pyproject: kubernetes-validate>=1.33)
IMAGE_NAME = "translate"  # as scripts/container_smoke.sh and the Dockerfile's usage line tag it: translate:<version>


def manifests() -> dict[str, dict]:
    """file name -> resource, for every manifest but kustomization.yaml (which is kustomize's, not Kubernetes')."""
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(DEPLOY.glob("*.yaml"))
            if path.name != "kustomization.yaml"}


def of_kind(kind: str) -> dict:
    [resource] = [r for r in manifests().values() if r["kind"] == kind]
    return resource


def container() -> dict:
    [c] = of_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def dockerfile(instruction: str) -> list[str]:
    """The arguments of every `instruction` line of the Dockerfile (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [m.group(1).strip() for m in re.finditer(rf"^{instruction}\s+(.+)$", text, re.MULTILINE)]


@pytest.mark.parametrize("name", sorted(manifests()))
def test_manifest_is_valid_kubernetes(name):
    kubernetes_validate.validate(manifests()[name], KUBERNETES, strict=True)  # raises ValidationError with the path


def test_strict_validation_refuses_unknown_fields():  # the check above checks something
    deployment = of_kind("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {"path": "/health"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(manifests())


def test_image_is_this_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    image = f"{IMAGE_NAME}:{version}"
    assert container()["image"] == image
    smoke = ROOT / "scripts" / "container_smoke.sh"  # builds and tags the image
    if smoke.exists():
        assert image in smoke.read_text()


def test_container_agrees_with_the_dockerfile():
    [port] = [int(p.split("/")[0]) for p in dockerfile("EXPOSE")]
    assert [p["containerPort"] for p in container()["ports"]] == [port]
    uids = [int(u) for line in dockerfile("USER") for u in re.findall(r"^(\d+)", line)]
    uids += [int(u) for line in dockerfile("RUN") for u in re.findall(r"useradd\b.*?--uid\s+(\d+)", line)]
    pod = of_kind("Deployment")["spec"]["template"]["spec"]
    assert uids and set(uids) == {pod["securityContext"]["runAsUser"]}, uids
    [volume] = [json_list(v) for v in dockerfile("VOLUME")]
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    assert volume == ["/models"] and mounts["/models"]["readOnly"]
    assert "--models /models" in " ".join(json_list(dockerfile("CMD")[-1]))  # the container keeps the image's CMD
    assert "command" not in container() and "args" not in container()


def json_list(text: str) -> list[str]:
    return yaml.safe_load(text)  # a Dockerfile's exec form is a JSON list, which YAML reads too


def test_probes_ask_routes_the_app_has():
    paths = set(create_app(Settings()).openapi_schema.paths)
    c = container()
    probes = {kind: c[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/health" and probes["readinessProbe"]["path"] == "/ready"
    for probe in probes.values():
        assert probe["path"] in paths and probe["port"] == c["ports"][0]["name"]


def test_settings_are_ones_the_service_reads():
    env = {e["name"]: e["value"] for e in container()["env"] if e["name"].startswith(ENV_PREFIX)}
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.__dataclass_fields__}
    assert env and set(env) <= known, set(env) - known  # from_env ignores unknown variables: a typo would be silent
    settings = Settings.from_env(env)  # and each value is of the setting's type
    limits = container()["resources"]["limits"]
    assert settings.processes * settings.workers <= int(limits["cpu"])  # inference workers fit the CPU limit


def test_resources_refer_to_each_other():
    deployment, pod = of_kind("Deployment"), of_kind("Deployment")["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = of_kind("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= {p["name"] for p in container()["ports"]}
    target = of_kind("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {of_kind("PersistentVolumeClaim")["metadata"]["name"]} == {"translate-runs"}
    assert all(container()["resources"][k].keys() == {"cpu", "memory"} for k in ("requests", "limits"))
    assert container()["securityContext"]["readOnlyRootFilesystem"] and pod["spec"]["securityContext"]["runAsNonRoot"]
    tmp = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}["/tmp"]  # tempfile's folder stays writable
    assert any(v["name"] == tmp and "emptyDir" in v for v in pod["spec"]["volumes"])
