"""The checks of deploy/check that need a program: schema validation of rendered manifests,
the PrometheusRule/alerts.yaml equality, and the dashboard's promises. Run by deploy/check in
its virtualenv (kubernetes-validate, cloudcoil-models-prometheus-operator); not on its own.

Usage:
  check.py manifests RENDERED.yaml...          strict schemas, then the hardening policy
  check.py rules-equal ALERTS.yaml PROMETHEUSRULE.yaml
  check.py dashboard DASHBOARD.json RULES_OUT.yaml   writes every query as a recording rule,
                                                      for promtool check rules to parse
  check.py metric-names FILE...                 every ssm_association_* name is a real metric
"""

import json
import os
import re
from pathlib import Path
import sys

import yaml

# What the exporter exports: the README's metrics table, which a test in tests/it/docs.rs holds
# to the code. A query naming anything else is wrong.
_README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
METRICS = set(re.findall(r"^\| `(ssm_association_[a-z_]+)` \|", _README, re.M))
METRIC_NAME = re.compile(r"\bssm_association_[a-z_]+\b")

# Kubernetes versions whose schemas the manifests must pass: the oldest and newest that
# kubernetes-validate ships and that are still commonly run.
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]

# The exporter's container, wherever it runs (standalone Deployment or sidecar).
EXPORTER_CONTAINER = "ssm-association-exporter"

errors = []


def fail(message):
    errors.append(message)
    print(f"FAIL {message}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def strict_prometheus_operator_models():
    """cloudcoil's pydantic models of the Prometheus Operator's CRDs, made to reject unknown
    fields (as `kubectl apply --validate=strict` would) and snake_case spellings."""
    import pydantic
    from cloudcoil import apimachinery
    from cloudcoil.models.prometheus_operator import v1

    models = [
        o
        for m in (v1, apimachinery)
        for o in vars(m).values()
        if isinstance(o, type) and issubclass(o, pydantic.BaseModel) and o.__module__ == m.__name__
    ]
    for model in models:
        model.model_config["extra"] = "forbid"
        model.model_config["populate_by_name"] = False
    # Nested models embed each other's schemas: rebuild until every parent sees the new config.
    for _ in range(2):
        for model in models:
            model.model_rebuild(force=True)
    return {"ServiceMonitor": v1.ServiceMonitor, "PodMonitor": v1.PodMonitor, "PrometheusRule": v1.PrometheusRule}


def validate_schemas(path, docs):
    import kubernetes_validate
    import kubernetes_validate.utils as kv

    crds = None
    for doc in docs:
        name = f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            crds = crds or strict_prometheus_operator_models()
            model = crds.get(doc["kind"])
            if model is None:
                fail(f"{name}: no schema for this kind")
                continue
            try:
                model.model_validate(doc)
                print(f"ok   {name} (Prometheus Operator CRD schema, strict)")
            except Exception as e:  # pydantic.ValidationError; its text names the field
                fail(f"{name}: {e}")
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                fail(f"{name}: Kubernetes {version}: {where}: {e.message}")
                break
            except kv.SchemaNotFoundError as e:
                fail(f"{name}: {e.message}")
                break
        else:
            print(f"ok   {name} (Kubernetes {' and '.join(KUBERNETES_VERSIONS)} schemas, strict)")


def check_hardening(path, docs):
    """What the issue promises of every pod: the exporter hardened, limited and probed."""
    found = False
    for doc in docs:
        if doc.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for c in pod.get("containers", []):
            if c["name"] != EXPORTER_CONTAINER:
                continue
            found = True
            where = f"{path}: {doc['kind']}/{doc['metadata']['name']} container {c['name']}"
            sc = c.get("securityContext", {})
            pod_sc = pod.get("securityContext", {})
            want = {
                "runAsNonRoot": sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True,
                "readOnlyRootFilesystem": sc.get("readOnlyRootFilesystem") is True,
                "allowPrivilegeEscalation: false": sc.get("allowPrivilegeEscalation") is False,
                "capabilities drop ALL": sc.get("capabilities", {}).get("drop") == ["ALL"],
                "seccomp RuntimeDefault": (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
                == "RuntimeDefault",
                "cpu and memory requests": {"cpu", "memory"} <= set(c.get("resources", {}).get("requests", {})),
                "memory limit": "memory" in c.get("resources", {}).get("limits", {}),
                "liveness on /-/healthy": c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/-/healthy",
            }
            # A sidecar's readiness would gate its application's traffic on the first poll cycle.
            if "readinessProbe" in c or doc["metadata"]["name"] == EXPORTER_CONTAINER:
                want["readiness on /-/ready"] = c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/-/ready"
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            want["container port 8467"] = 8467 in ports.values()
            for probe in ("livenessProbe", "readinessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None and port not in ports and port not in ports.values():
                    want[f"{probe} port {port} is a container port"] = False
            for what, ok in want.items():
                if not ok:
                    fail(f"{where}: not {what}")
            print(f"ok   {where}: hardening, resources and probes")
    if not found:
        fail(f"{path}: no container named {EXPORTER_CONTAINER}")


def cmd_manifests(paths):
    for path in paths:
        docs = load_all(path)
        path = os.path.basename(path)
        if not docs:
            fail(f"{path}: rendered nothing")
            continue
        validate_schemas(path, docs)
        check_hardening(path, docs)


def cmd_rules_equal(alerts_path, rule_path):
    (alerts,) = load_all(alerts_path)
    (rule,) = load_all(rule_path)
    if rule.get("kind") != "PrometheusRule":
        fail(f"{rule_path}: not a PrometheusRule")
    elif rule.get("spec") != alerts:
        fail(f"{rule_path}: spec differs from {alerts_path}: run deploy/gen-prometheusrule")
    else:
        n = sum(len(g["rules"]) for g in alerts["groups"])
        print(f"ok   {rule_path}: the same {n} rules as {alerts_path}")


def panels_of(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def cmd_dashboard(path, rules_out):
    with open(path) as f:
        d = json.load(f)
    ds_ref = "${datasource}"
    if d.get("uid") != "ssm-association-exporter":
        fail(f"{path}: uid is {d.get('uid')!r}, not the fixed 'ssm-association-exporter'")
    if d.get("id") is not None:
        fail(f"{path}: carries a database id; provisioned dashboards must not")
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail(f"{path}: no `datasource` variable of type datasource for prometheus")
    for name, v in variables.items():
        if v.get("type") == "query" and v.get("datasource", {}).get("uid") != ds_ref:
            fail(f"{path}: variable {name} does not use ${{datasource}}")

    queries = []
    ids = set()
    boxes = []
    for panel in panels_of(d):
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            fail(f"{path}: panel {title!r}: id {panel.get('id')} is not unique")
        ids.add(panel.get("id"))
        g = panel.get("gridPos", {})
        box = (g.get("x", 0), g.get("y", 0), g.get("w", 0), g.get("h", 0))
        if box[0] + box[2] > 24 or box[2] <= 0 or box[3] <= 0:
            fail(f"{path}: panel {title!r}: gridPos {g} does not fit the 24-column grid")
        for other_title, o in boxes:
            if box[0] < o[0] + o[2] and o[0] < box[0] + box[2] and box[1] < o[1] + o[3] and o[1] < box[1] + box[3]:
                fail(f"{path}: panels {title!r} and {other_title!r} overlap")
        boxes.append((title, box))
        if panel.get("datasource", {}).get("uid") != ds_ref:
            fail(f"{path}: panel {title!r} does not use ${{datasource}}")
        if panel.get("type") == "row":
            continue
        if not panel.get("targets"):
            fail(f"{path}: panel {title!r} has no query")
        for t in panel.get("targets", []):
            if t.get("datasource", {}).get("uid") != ds_ref:
                fail(f"{path}: panel {title!r} query {t.get('refId')} does not use ${{datasource}}")
            expr = t.get("expr", "")
            if not METRIC_NAME.search(expr):
                fail(f"{path}: panel {title!r} query {t.get('refId')} names no metric of the exporter")
            queries.append((f"{title} {t.get('refId')}", expr))
    for name, v in variables.items():
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query":
            check_names(f"{path}: variable {name}", q or "")

    # Grafana's variables and macros, replaced by what they stand for, so promtool can parse.
    def concrete(expr):
        for var, value in (("$__rate_interval", "2m"), ("$__interval", "1m"), ("$__range", "1h"),
                           ("$job", ".*"), ("$association", ".*")):
            expr = expr.replace(var, value)
        if "$" in expr:
            fail(f"{path}: query uses an unknown variable: {expr}")
        return expr

    for where, expr in queries:
        check_names(f"{path}: panel {where}", expr)
    rules = {"groups": [{"name": "dashboard-queries", "rules": [
        {"record": f"dashboard:query_{i}", "expr": concrete(expr)} for i, (_, expr) in enumerate(queries)]}]}
    with open(rules_out, "w") as f:
        yaml.safe_dump(rules, f)
    print(f"ok   {path}: uid, datasource variable, {len(ids)} panels, {len(queries)} queries naming real metrics")


def check_names(where, text):
    for name in sorted(set(METRIC_NAME.findall(text)) - METRICS):
        fail(f"{where}: {name} is not a metric the exporter exports")


def cmd_metric_names(paths):
    for path in paths:
        with open(path) as f:
            text = f.read()
        before = len(errors)
        check_names(path, text)
        if len(errors) == before:
            print(f"ok   {path}: every ssm_association_* name is exported")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "manifests" and args:
        cmd_manifests(args)
    elif cmd == "rules-equal" and len(args) == 2:
        cmd_rules_equal(*args)
    elif cmd == "dashboard" and len(args) == 2:
        cmd_dashboard(*args)
    elif cmd == "metric-names" and args:
        cmd_metric_names(args)
    else:
        sys.exit(__doc__)
    if errors:
        sys.exit(f"{len(errors)} problem(s)")


if __name__ == "__main__":
    main(sys.argv)
