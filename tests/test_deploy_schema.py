"""Every object in deploy/*.yaml is schema-checked offline, for the versions the project names:
the Kubernetes core objects against Kubernetes' own OpenAPI schemas (kubernetes-validate, which
bundles them; strict, so unknown fields are refused), the KubeRay RayCluster and RayJob against
the fields of KubeRay 1.5.1 (a reduced schema vendored in tests/data/kuberay-1.5.1, see its
README), and the pod templates inside the KubeRay objects, which that schema leaves open, as core
PodTemplateSpecs. The negative tests show that a misspelt field, a wrong type and a value outside
an enum are refused at each of these levels."""
import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES_VERSION = "1.37.0"  # bundled by the pinned kubernetes-validate (requirements.txt)
KUBERAY_VERSION = "1.5.1"  # named in the headers of deploy/raycluster.yaml and deploy/rayjob.yaml
KUBERAY_SCHEMA = ROOT / "tests" / "data" / f"kuberay-{KUBERAY_VERSION}" / "ray.io_v1.schema.json"


def _documents():
    out = []
    for f in sorted((ROOT / "deploy").glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            if d is not None:
                out.append((f.name, d))
    return out


DOCUMENTS = _documents()


def _id(item):
    name, d = item
    meta = d.get("metadata", {})
    return f"{name}:{d['kind']}/{meta.get('name') or meta.get('generateName')}"


def _is_kuberay(d):
    return d["apiVersion"].startswith("ray.io/")


def _doc(kind):
    return copy.deepcopy(next(d for _, d in DOCUMENTS if d["kind"] == kind))


def _validate_core(d):
    """kubernetes-validate's strict schemas; it falls back to an older bundled version without a
    word, so the version it used is checked too."""
    used = kubernetes_validate.validate(d, KUBERNETES_VERSION, strict=True)
    assert used == KUBERNETES_VERSION.rsplit(".", 1)[0], used


_SCHEMA = json.loads(KUBERAY_SCHEMA.read_text())


def _kuberay_errors(d):
    """All errors of a KubeRay object against the vendored schema, as 'path: message' lines."""
    if d["kind"] not in _SCHEMA["$defs"]:
        return [f"{d['kind']}: no schema for this kind in {KUBERAY_SCHEMA.name}"]
    schema = {"$schema": _SCHEMA["$schema"], "$defs": _SCHEMA["$defs"],
              "$ref": f"#/$defs/{d['kind']}"}
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                  for e in validator.iter_errors(d))


def _pod_templates(d):
    """(where, template) for every pod template of a KubeRay object."""
    spec = d.get("spec", {})
    clusters = [("spec", spec)] if d["kind"] == "RayCluster" else []
    if d["kind"] == "RayJob":
        if "rayClusterSpec" in spec:
            clusters.append(("spec.rayClusterSpec", spec["rayClusterSpec"]))
        if "submitterPodTemplate" in spec:
            yield "spec.submitterPodTemplate", spec["submitterPodTemplate"]
    for where, cluster in clusters:
        if "headGroupSpec" in cluster:
            yield f"{where}.headGroupSpec.template", cluster["headGroupSpec"]["template"]
        for i, group in enumerate(cluster.get("workerGroupSpecs", [])):
            yield f"{where}.workerGroupSpecs[{i}].template", group["template"]


def _validate_pod_template(owner, template):
    """A pod template as the template of a core v1 PodTemplate, whose metadata is the KubeRay
    object's own (so that ObjectMeta is checked strictly as well)."""
    _validate_core({"apiVersion": "v1", "kind": "PodTemplate",
                    "metadata": copy.deepcopy(owner["metadata"]), "template": template})


def test_the_documents_are_what_the_tests_below_expect():
    kinds = {d["kind"] for _, d in DOCUMENTS}
    assert {"PersistentVolumeClaim", "Deployment", "Service", "RayCluster", "RayJob"} <= kinds
    for _, d in DOCUMENTS:  # every KubeRay kind in deploy/ has a vendored schema
        assert not _is_kuberay(d) or d["kind"] in _SCHEMA["$defs"], d["kind"]
    assert KUBERNETES_VERSION in kubernetes_validate.utils.all_versions()
    jsonschema.Draft202012Validator.check_schema(_SCHEMA)
    assert _SCHEMA["x-kuberay-version"] == KUBERAY_VERSION
    for name in ("raycluster.yaml", "rayjob.yaml"):  # the headers name the exact version
        header = (ROOT / "deploy" / name).read_text().split("\napiVersion:")[0]
        assert f"KubeRay {KUBERAY_VERSION}" in header, name


@pytest.mark.parametrize("item", [i for i in DOCUMENTS if not _is_kuberay(i[1])], ids=_id)
def test_core_objects_pass_kubernetes_schema_validation(item):
    _validate_core(item[1])


@pytest.mark.parametrize("item", [i for i in DOCUMENTS if _is_kuberay(i[1])], ids=_id)
def test_kuberay_objects_have_only_the_fields_of_the_pinned_kuberay(item):
    assert _kuberay_errors(item[1]) == []


@pytest.mark.parametrize("item", [i for i in DOCUMENTS if _is_kuberay(i[1])], ids=_id)
def test_kuberay_pod_templates_pass_as_core_pod_templates(item):
    templates = list(_pod_templates(item[1]))
    assert templates or item[1]["kind"] == "RayJob"  # the RayJob runs on deploy/raycluster.yaml's
    for where, template in templates:
        try:
            _validate_pod_template(item[1], template)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{where}: {'.'.join(map(str, e.path))}: {e.message}")


# --- the checks bite ---------------------------------------------------------------------------

def _rename(mapping, old, new):
    mapping[new] = mapping.pop(old)


def test_a_misspelt_field_in_a_core_object_is_refused():
    pvc = next(d for _, d in DOCUMENTS if d["kind"] == "PersistentVolumeClaim")
    pvc = copy.deepcopy(pvc)
    _rename(pvc["spec"], "accessModes", "acessModes")
    with pytest.raises(kubernetes_validate.ValidationError, match="acessModes"):
        _validate_core(pvc)

    deployment = _doc("Deployment")  # deep inside the pod template of a Deployment too
    _rename(deployment["spec"]["template"]["spec"]["containers"][0], "readinessProbe",
            "readinesProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        _validate_core(deployment)


def test_a_wrong_type_in_a_core_object_is_refused():
    service = _doc("Service")
    service["spec"]["ports"][0]["port"] = "5000"  # an integer; only targetPort may be a name
    with pytest.raises(kubernetes_validate.ValidationError,
                       match="'5000' is not of type 'integer'"):
        _validate_core(service)


def test_a_misspelt_field_in_the_rayjob_is_refused():
    job = _doc("RayJob")
    _rename(job["spec"], "backoffLimit", "backofLimit")
    assert _kuberay_errors(job) == [
        "spec: Additional properties are not allowed ('backofLimit' was unexpected)"]

    cluster = _doc("RayCluster")  # and in a worker group of the RayCluster
    _rename(cluster["spec"]["workerGroupSpecs"][0], "maxReplicas", "maxReplica")
    errors = _kuberay_errors(cluster)
    assert "spec.workerGroupSpecs.0: 'maxReplicas' is a required property" in errors
    assert ("spec.workerGroupSpecs.0: Additional properties are not allowed "
            "('maxReplica' was unexpected)") in errors


def test_a_wrong_type_or_value_in_a_kuberay_object_is_refused():
    job = _doc("RayJob")
    job["spec"]["backoffLimit"] = "3"
    assert _kuberay_errors(job) == ["spec.backoffLimit: '3' is not of type 'integer'"]

    cluster = _doc("RayCluster")
    cluster["spec"]["enableInTreeAutoscaling"] = "true"
    cluster["spec"]["authOptions"]["mode"] = "tokens"
    assert _kuberay_errors(cluster) == [
        "spec.authOptions.mode: 'tokens' is not one of ['disabled', 'token']",
        "spec.enableInTreeAutoscaling: 'true' is not of type 'boolean'",
    ]

    del cluster["spec"]["headGroupSpec"]
    assert "spec: 'headGroupSpec' is a required property" in _kuberay_errors(cluster)


def test_a_misspelt_field_in_a_kuberay_pod_template_is_refused():
    # the vendored schema leaves pod templates open; the core check is what catches this
    cluster = _doc("RayCluster")
    _rename(cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"], "tolerations",
            "toleration")
    assert _kuberay_errors(cluster) == []
    (where, template), = [t for t in _pod_templates(cluster) if "workerGroupSpecs" in t[0]]
    with pytest.raises(kubernetes_validate.ValidationError, match="toleration"):
        _validate_pod_template(cluster, template)
