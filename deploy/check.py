"""The checks of deploy/check that need a program: schema validation of rendered manifests,
the PrometheusRule/alerts.yaml equality, the dashboard's promises, the image build files, the
Helm chart (helm-python-sdk), and what podman can play. Run by deploy/check and
deploy/podman/check in their virtualenv (tools.sh); not on its own.

Usage:
  check.py manifests RENDERED.yaml...          strict schemas, then the hardening policy
  check.py rules-equal ALERTS.yaml PROMETHEUSRULE.yaml
  check.py dashboard DASHBOARD.json RULES_OUT.yaml   writes every query as a recording rule,
                                                      for promtool check rules to parse
  check.py metric-names FILE...                 every ssm_association_* name is a real metric
  check.py image-files DOCKERFILE CONTAINERFILE  both final stages declare the same runtime, and
                                                the build stage copies all the build reads
  check.py image-config INSPECT.json CONTAINERFILE   a built image (podman image inspect) is
                                                      configured as its build file says
  check.py helm-lint CHART [VALUES.yaml...]     helm lint --strict, per Kubernetes version
  check.py helm-schema CHART                    values.schema.json refuses bad values
  check.py helm-render CHART OUT [VALUES.yaml...]    helm template, into one file
  check.py chart-parity CHART.yaml KUSTOMIZE.yaml    where the two renderings overlap, they agree
  check.py playable RENDERED.yaml OUT           what podman kube play can play (see its doc)
"""

import json
import os
import re
from pathlib import Path
import sys
import tomllib

import yaml

# What the exporter exports: the metrics table of docs/metrics.md, which a test in
# tests/it/docs.rs holds to the code. A query naming anything else is wrong.
_METRICS_DOC = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text()
METRICS = set(re.findall(r"^\| `(ssm_association_[a-z_]+)` \|", _METRICS_DOC, re.M))
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


# The runtime both image build files must declare alike: what a container of the image is.
RUNTIME_INSTRUCTIONS = ("USER", "ENV", "EXPOSE", "ENTRYPOINT", "CMD")


def instructions(path):
    """A build file's instructions, comments dropped and continuation lines joined."""
    lines, joined = [], ""
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not joined and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                joined += line[:-1] + " "
                continue
            lines.append(joined + line)
            joined = ""
    return lines


def final_stage(path):
    """The instructions after a build file's last FROM, as {instruction: [arguments, ...]}
    for RUNTIME_INSTRUCTIONS."""
    lines = instructions(path)
    last_from = max(i for i, line in enumerate(lines) if line.split()[0].upper() == "FROM")
    stage = {}
    for line in lines[last_from + 1:]:
        word, _, rest = line.partition(" ")
        if word.upper() in RUNTIME_INSTRUCTIONS:
            rest = rest.strip()
            if word.upper() in ("ENTRYPOINT", "CMD"):
                rest = json.loads(rest)  # the exec form only: no shell in the image to run the other
            stage.setdefault(word.upper(), []).append(rest)
    return stage


def top(path):
    """The first component of a relative path: what a COPY of the build context must name."""
    return Path(os.path.normpath(path)).parts[0]


def build_inputs(root):
    """The top-level paths a cargo build of the crate reads: the manifest and lock file, the
    build script, every target's folder, and each askama config that a template names with
    the template folders it lists (askama's default: `templates`)."""
    manifest = (root / "Cargo.toml").read_text()
    inputs = {"Cargo.toml", "Cargo.lock"}
    if (root / "build.rs").exists():
        inputs.add("build.rs")
    inputs |= {top(p) for p in re.findall(r'^path\s*=\s*"([^"]+)"', manifest, re.M)}
    if re.search(r"^\[\[bench\]\]", manifest, re.M):
        inputs.add("benches")  # cargo refuses a manifest whose declared targets have no file
    configs = {config for source in (root / "src").rglob("*.rs")
               for config in re.findall(r'#\[template\([^\]]*\bconfig\s*=\s*"([^"]+)"', source.read_text())}
    for config in configs:
        general = tomllib.loads((root / config).read_text()).get("general", {})
        inputs |= {top(config)} | {top(d) for d in general.get("dirs", ["templates"])}
    return inputs


def copied_sources(path):
    """The sources that a build file's COPY instructions take from the build context (not
    from another stage), as top-level names."""
    copied = set()
    for line in instructions(path):
        words = line.split()
        if words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            copied |= {top(w) for w in words[1:-1] if not w.startswith("--")}
    return copied


def cmd_image_files(dockerfile, containerfile):
    inputs = build_inputs(Path(__file__).resolve().parent.parent)
    missing = sorted(inputs - copied_sources(dockerfile))
    if missing:
        fail(f"{dockerfile}: its build stage copies none of {', '.join(missing)}, which the build reads")
    a, b = final_stage(dockerfile), final_stage(containerfile)
    for instruction in RUNTIME_INSTRUCTIONS:
        if instruction not in a:
            fail(f"{dockerfile}: its final stage has no {instruction}")
        elif a.get(instruction) != b.get(instruction):
            fail(f"{containerfile}: {instruction} {b.get(instruction)} differs from {dockerfile}'s {a[instruction]}")
    if not errors:
        print(f"ok   {dockerfile} builds from {', '.join(sorted(inputs))}; "
              f"{containerfile} declares the runtime of its final stage: "
              + ", ".join(f"{k} {' '.join(map(str, v))}" for k, v in a.items()))


def cmd_image_config(inspect_path, containerfile):
    with open(inspect_path) as f:
        (image,) = json.load(f)
    config = image["Config"]
    want = final_stage(containerfile)
    (user,) = want["USER"]
    got = {
        "USER": config.get("User") == user,
        "ENTRYPOINT": config.get("Entrypoint") == want["ENTRYPOINT"][-1],
        "CMD": config.get("Cmd") == want["CMD"][-1],
        "ENV": set(want["ENV"]) <= set(config.get("Env") or []),
        "EXPOSE": {f"{p}/tcp" if "/" not in p else p for p in want["EXPOSE"]} == set(config.get("ExposedPorts") or {}),
    }
    for instruction, ok in got.items():
        if not ok:
            fail(f"{inspect_path}: the image's {instruction} is not {want[instruction]} (its config: {config})")
    if not errors:
        print(f"ok   the built image runs {config['Entrypoint']} {config['Cmd']} as {config['User']}, "
              f"env {config.get('Env')}, port {sorted(config['ExposedPorts'])}")


# Helm renders as a release of this name in this namespace: the chart's objects are then named
# as deploy/kubernetes's are.
RELEASE = "ssm-association-exporter"
NAMESPACE = "monitoring"


def helm():
    import helm_python

    return helm_python


def deep_merge(base, override):
    merged = dict(base)
    for k, v in override.items():
        merged[k] = deep_merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def values_of(paths):
    values = {}
    for path in paths:
        with open(path) as f:
            values = deep_merge(values, yaml.safe_load(f) or {})
    return values


def cmd_helm_lint(chart, values_paths):
    for values_path in [None, *values_paths]:
        values = values_of([values_path] if values_path else [])
        for version in KUBERNETES_VERSIONS:
            report = helm().lint(chart, values, strict=True, namespace=NAMESPACE, kube_version=f"v{version}")
            where = f"{chart} ({values_path or 'default values'}, Kubernetes {version})"
            for m in report["messages"]:
                # Helm's own severities: 1 info, 2 warning, 3 error; --strict fails on warnings.
                if m["severity"] >= 2:
                    fail(f"{where}: {m['path']}: {m['error']}")
                else:
                    print(f"info {where}: {m['path']}: {m['error']}")
            for e in report["errors"]:
                fail(f"{where}: {e}")
            if report["total_charts_linted"] != 1:
                fail(f"{where}: linted {report['total_charts_linted']} charts, not 1")
        if not errors:
            print(f"ok   helm lint --strict {chart} with {values_path or 'default values'}, Kubernetes "
                  + " and ".join(KUBERNETES_VERSIONS))


# Values that values.schema.json must refuse, each for its own reason.
BAD_VALUES = [
    {"shardingg": {"enabled": True}},
    {"sharding": {"enabled": True, "shards": 0}},
    {"logLevel": "verbose"},
    {"image": {"pullPolicy": "Sometimes"}},
    {"service": {"port": 70000}},
    {"webConfig": {"enabled": True, "config": {"basic_auth_user": {}}}},
    {"config": {"poll_interval": 60}},
    {"prometheusRule": {"noRecentSuccessIntervals": 0}},
]


def cmd_helm_schema(chart):
    h = helm()
    with h.Chart.load(chart) as c:
        if not c.schema:
            fail(f"{chart}: has no values.schema.json")
            return
        c.validate_schema(c.values)
        for bad in BAD_VALUES:
            try:
                c.validate_schema(c.merge_values(bad))
            except h.HelmValuesError as e:
                print(f"ok   refused {json.dumps(bad)}: {str(e).splitlines()[-1].strip()}")
            else:
                fail(f"{chart}: values.schema.json accepts {json.dumps(bad)}")


def cmd_helm_render(chart, out, values_paths):
    h = helm()
    values = values_of(values_paths)
    with h.Chart.load(chart) as c:
        c.validate_schema(c.merge_values(values))
        manifests = c.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for name in sorted(manifests):
        body = manifests[name].strip()
        if name.endswith("NOTES.txt") or not body:
            continue
        # As `helm template` prints it.
        docs.append(f"---\n# Source: {name}\n{body}\n")
    with open(out, "w") as f:
        f.write("".join(docs))
    kinds = [d["kind"] for d in load_all(out)]
    print(f"rendered {chart} with {', '.join(values_paths) or 'default values'}: {', '.join(kinds)}")


def exporter_workload(docs, path):
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    if len(workloads) != 1:
        fail(f"{path}: {len(workloads)} exporter workloads, not 1")
        return None
    return workloads[0]


def by_kind(docs):
    return {d["kind"]: d for d in docs}


def cmd_chart_parity(chart_path, kustomize_path):
    """The chart and the kustomizations say the same wherever both say something: the pod's
    hardening, probes, resources, arguments, ports, environment and volumes' mount points; the
    configuration; the Service's ports; the ServiceMonitor's endpoint; the rules."""
    chart, kust = load_all(chart_path), load_all(kustomize_path)
    cw, kw = exporter_workload(chart, chart_path), exporter_workload(kust, kustomize_path)
    if cw is None or kw is None:
        return
    compared = []

    def same(what, a, b):
        compared.append(what)
        if a != b:
            fail(f"{chart_path} and {kustomize_path} differ in {what}:\n  chart:     {a}\n  kustomize: {b}")

    same("workload kind", cw["kind"], kw["kind"])
    for key in ("replicas", "revisionHistoryLimit", "podManagementPolicy"):
        same(f"spec.{key}", cw["spec"].get(key), kw["spec"].get(key))
    cp, kp = cw["spec"]["template"]["spec"], kw["spec"]["template"]["spec"]
    for key in ("automountServiceAccountToken", "enableServiceLinks", "securityContext"):
        same(f"pod {key}", cp.get(key), kp.get(key))
    same("pod component label", cw["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component"),
         kw["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component"))
    (cc,) = [c for c in cp["containers"] if c["name"] == EXPORTER_CONTAINER]
    (kc,) = [c for c in kp["containers"] if c["name"] == EXPORTER_CONTAINER]
    for key in ("image", "imagePullPolicy", "args", "env", "ports", "livenessProbe", "readinessProbe", "resources",
                "securityContext", "volumeMounts"):
        same(f"container {key}", cc.get(key), kc.get(key))
    same("volumes (name and kind)", [(v["name"], sorted(set(v) - {"name"})) for v in cp["volumes"]],
         [(v["name"], sorted(set(v) - {"name"})) for v in kp["volumes"]])
    c, k = by_kind(chart), by_kind(kust)
    same("ConfigMap config.yaml", yaml.safe_load(c["ConfigMap"]["data"]["config.yaml"]),
         yaml.safe_load(k["ConfigMap"]["data"]["config.yaml"]))
    same("Service type and ports", (c["Service"]["spec"].get("type"), c["Service"]["spec"]["ports"]),
         (k["Service"]["spec"].get("type"), k["Service"]["spec"]["ports"]))
    same("ServiceAccount automountServiceAccountToken", c["ServiceAccount"].get("automountServiceAccountToken"),
         k["ServiceAccount"].get("automountServiceAccountToken"))
    # Off in the chart's defaults, on in the kustomizations: compared where both render them.
    if "ServiceMonitor" in c and "ServiceMonitor" in k:
        same("ServiceMonitor endpoints", c["ServiceMonitor"]["spec"]["endpoints"],
             k["ServiceMonitor"]["spec"]["endpoints"])
    if "PrometheusRule" in c and "PrometheusRule" in k:
        same("PrometheusRule spec", c["PrometheusRule"]["spec"], k["PrometheusRule"]["spec"])
    if not errors:
        print(f"ok   {os.path.basename(chart_path)} agrees with {os.path.basename(kustomize_path)} in {len(compared)} "
              f"places: {', '.join(compared)}")


# Kinds `podman kube play` (4.3) plays; StatefulSet is turned into its pods, as below.
PLAYABLE = ("Pod", "Deployment", "ConfigMap", "PersistentVolumeClaim")


def cmd_playable(rendered, out):
    """What podman kube play can run of a rendering. Podman plays Pods, Deployments and
    ConfigMaps; it has no StatefulSet (and no controller at all). So each StatefulSet becomes
    the pods its controller would make: NAME-0..NAME-(replicas-1), each labelled with its
    ordinal (apps.kubernetes.io/pod-index, statefulset.kubernetes.io/pod-name), from the pod
    template unchanged but for one thing one host needs and a cluster does not: each pod's
    hostPorts move up by its ordinal, so the replicas do not all publish the same port.
    Everything else (Services, ServiceAccounts, the Prometheus Operator's kinds) is left out,
    and listed."""
    kept, left_out = [], []
    for doc in load_all(rendered):
        kind = doc["kind"]
        if kind in PLAYABLE:
            kept.append(doc)
        elif kind == "StatefulSet":
            name = doc["metadata"]["name"]
            template = doc["spec"]["template"]
            for i in range(doc["spec"].get("replicas", 1)):
                pod_name = f"{name}-{i}"
                labels = dict(template["metadata"].get("labels", {}))
                labels["apps.kubernetes.io/pod-index"] = str(i)
                labels["statefulset.kubernetes.io/pod-name"] = pod_name
                spec = json.loads(json.dumps(template["spec"]))
                for c in spec["containers"]:
                    for p in c.get("ports", []):
                        if "hostPort" in p:
                            p["hostPort"] += i
                kept.append({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {**template["metadata"], "name": pod_name, "labels": labels},
                             "spec": spec})
        else:
            left_out.append(f"{kind}/{doc['metadata']['name']}")
    with open(out, "w") as f:
        yaml.safe_dump_all(kept, f, sort_keys=False)
    print(f"playable: {', '.join(d['kind'] + '/' + d['metadata']['name'] for d in kept)}; "
          f"left out: {', '.join(left_out) or 'nothing'}")


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
    elif cmd == "image-files" and len(args) == 2:
        cmd_image_files(*args)
    elif cmd == "image-config" and len(args) == 2:
        cmd_image_config(*args)
    elif cmd == "helm-lint" and args:
        cmd_helm_lint(args[0], args[1:])
    elif cmd == "helm-schema" and len(args) == 1:
        cmd_helm_schema(args[0])
    elif cmd == "helm-render" and len(args) >= 2:
        cmd_helm_render(args[0], args[1], args[2:])
    elif cmd == "chart-parity" and len(args) == 2:
        cmd_chart_parity(*args)
    elif cmd == "playable" and len(args) == 2:
        cmd_playable(*args)
    else:
        sys.exit(__doc__)
    if errors:
        sys.exit(f"{len(errors)} problem(s)")


if __name__ == "__main__":
    main(sys.argv)
