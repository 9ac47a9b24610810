//! Rendering the repository's examples: the kinds present, selectors that agree, routes that
//! reach the right backends, a Job that shards, EPP configs that read back with the right
//! weights, names Kubernetes accepts, and YAML that reads back document by document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use inferbench_config::Config;
use inferbench_k8s::crd::{HttpRoute, InferenceObjective, InferencePool};
use inferbench_k8s::epp::EndpointPickerConfig;
use inferbench_k8s::names::is_dns1123_label;
use inferbench_k8s::{EppApi, Manifest, RenderError, RenderOptions, render, to_yaml};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn load(name: &str) -> Config {
    Config::load(&example(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn opts(scenario: Option<&str>) -> RenderOptions {
    RenderOptions {
        scenario: scenario.map(str::to_string),
        shards: 4,
        start_at_unix_ms: 1_900_000_000_000,
        ..Default::default()
    }
}

/// `opts` for a scenario that runs on one pod (routing arms, sweeps, stress tests).
fn one_pod(scenario: Option<&str>) -> RenderOptions {
    RenderOptions {
        shards: 1,
        ..opts(scenario)
    }
}

fn kinds(ms: &[Manifest]) -> BTreeMap<String, usize> {
    let mut k = BTreeMap::new();
    for m in ms {
        *k.entry(m.kind().to_string()).or_default() += 1;
    }
    k
}

fn deployments(ms: &[Manifest]) -> Vec<&Deployment> {
    ms.iter()
        .filter_map(|m| match m {
            Manifest::Deployment(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn pools(ms: &[Manifest]) -> Vec<&InferencePool> {
    ms.iter()
        .filter_map(|m| match m {
            Manifest::InferencePool(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn routes(ms: &[Manifest]) -> Vec<&HttpRoute> {
    ms.iter()
        .filter_map(|m| match m {
            Manifest::HttpRoute(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn config_map<'a>(ms: &'a [Manifest], name: &str) -> &'a ConfigMap {
    ms.iter()
        .find_map(|m| match m {
            Manifest::ConfigMap(c) if m.name() == name => Some(c),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ConfigMap {name}"))
}

fn job(ms: &[Manifest]) -> &Job {
    ms.iter()
        .find_map(|m| match m {
            Manifest::Job(j) => Some(j),
            _ => None,
        })
        .expect("a Job")
}

fn deployment<'a>(ms: &'a [Manifest], name: &str) -> &'a Deployment {
    deployments(ms)
        .into_iter()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no Deployment {name}"))
}

fn args(d: &Deployment) -> Vec<String> {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap()
}

/// Every document reads back as the object it was, kind by kind, and every name is a DNS label
/// in the namespace asked for.
fn check_common(ms: &[Manifest], namespace: &str) {
    let yaml = to_yaml(ms).unwrap();
    let docs: Vec<&str> = yaml.split("\n---\n").collect();
    assert_eq!(docs.len(), ms.len(), "one document per object");
    for (doc, m) in docs.iter().zip(ms) {
        let generic: serde_json::Value =
            serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert_eq!(generic["kind"], m.kind(), "{doc}");
        assert_eq!(generic["apiVersion"], m.api_version(), "{doc}");
        let back_equal = match m {
            Manifest::Deployment(d) => serde_saphyr::from_str::<Deployment>(doc).unwrap() == *d,
            Manifest::Service(s) => serde_saphyr::from_str::<Service>(doc).unwrap() == *s,
            Manifest::ConfigMap(c) => serde_saphyr::from_str::<ConfigMap>(doc).unwrap() == *c,
            Manifest::Job(j) => serde_saphyr::from_str::<Job>(doc).unwrap() == *j,
            Manifest::InferencePool(p) => {
                serde_saphyr::from_str::<InferencePool>(doc).unwrap() == *p
            }
            Manifest::InferenceObjective(o) => {
                serde_saphyr::from_str::<InferenceObjective>(doc).unwrap() == *o
            }
            Manifest::HttpRoute(r) => serde_saphyr::from_str::<HttpRoute>(doc).unwrap() == *r,
            _ => true,
        };
        assert!(
            back_equal,
            "{} {} does not read back:\n{doc}",
            m.kind(),
            m.name()
        );
        assert!(is_dns1123_label(m.name()), "{} `{}`", m.kind(), m.name());
        if m.kind() != "Namespace" {
            assert_eq!(m.metadata().namespace.as_deref(), Some(namespace));
        }
        let labels = m.metadata().labels.as_ref().expect("labels");
        assert_eq!(
            labels.get("app.kubernetes.io/part-of").map(String::as_str),
            Some("inferbench")
        );
    }
}

#[test]
fn routing_overhead_renders_the_whole_environment() {
    let cfg = load("routing-overhead.yaml");
    // Arms alternate windows one after another: they cannot be split over pods.
    let e = render(&cfg, &opts(None)).unwrap_err().to_string();
    assert!(
        e.starts_with("--shards: scenario `routing-overhead` cannot be split"),
        "{e}"
    );
    let ms = render(&cfg, &one_pod(None)).unwrap();
    check_common(&ms, "inferbench");
    let k = kinds(&ms);
    for kind in [
        "Namespace",
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "InferencePool",
        "InferenceObjective",
        "Gateway",
        "HTTPRoute",
        "Job",
    ] {
        assert!(k.contains_key(kind), "{kind} missing: {k:?}");
    }
    // One model, no adapters: no BBR.
    assert!(
        deployments(&ms)
            .iter()
            .all(|d| !d.metadata.name.as_deref().unwrap().ends_with("-bbr"))
    );

    // The fleet: mocks on 8000 serving the target's model, ready on /health.
    let fleet = deployment(&ms, "routing-overhead");
    let spec = fleet.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(4));
    assert_eq!(
        args(fleet),
        [
            "mock",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "--model",
            "mock-model"
        ]
    );
    let pod = spec.template.spec.as_ref().unwrap();
    let probe = pod.containers[0].readiness_probe.as_ref().unwrap();
    assert_eq!(
        probe.http_get.as_ref().unwrap().path.as_deref(),
        Some("/health")
    );
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();

    // The InferencePool selects exactly the fleet's pods and names its EPP.
    let ips = pools(&ms);
    assert_eq!(ips.len(), 1, "one EPP arm, one pool");
    let ip = ips[0];
    assert_eq!(ip.spec.selector.match_labels, pod_labels);
    assert_eq!(ip.spec.target_ports[0].number, 8000);
    assert_eq!(ip.spec.endpoint_picker_ref.name, "routing-overhead-epp");
    assert_eq!(ip.spec.endpoint_picker_ref.port.number, 9002);
    assert_eq!(
        ip.spec.endpoint_picker_ref.failure_mode,
        inferbench_k8s::FailureMode::FailClose
    );

    // The EPP runs against that pool with the default profile.
    let epp = deployment(&ms, "routing-overhead-epp");
    assert_eq!(
        args(epp),
        [
            "--pool-name",
            "routing-overhead",
            "--pool-namespace",
            "inferbench",
            "--config-file",
            "/config/epp-config.yaml"
        ]
    );
    let text = &config_map(&ms, "routing-overhead-epp")
        .data
        .as_ref()
        .unwrap()["epp-config.yaml"];
    let epc: EndpointPickerConfig = serde_saphyr::from_str(text).unwrap();
    assert_eq!(epc.kind, "EndpointPickerConfig");
    assert_eq!(epc.api_version, "inference.networking.x-k8s.io/v1alpha1");
    assert_eq!(epc.weight_of("queue-scorer"), 2.0);
    assert_eq!(epc.weight_of("kv-cache-utilization-scorer"), 2.0);
    assert_eq!(epc.weight_of("prefix-cache-scorer"), 3.0);
    for t in ["max-score-picker", "single-profile-handler"] {
        assert!(epc.plugins.iter().any(|p| p.kind == t), "{t}");
    }

    // Routes: /baseline to the Service, /epp to the InferencePool.
    let rs = routes(&ms);
    let by_name: BTreeMap<&str, &HttpRoute> = rs
        .iter()
        .map(|r| (r.metadata.name.as_deref().unwrap(), *r))
        .collect();
    let base = &by_name["routing-overhead-baseline"].spec.rules[0];
    assert_eq!(base.matches[0].path.value, "/baseline");
    assert_eq!(base.backend_refs[0].kind, "Service");
    assert_eq!(base.backend_refs[0].name, "routing-overhead");
    assert_eq!(base.backend_refs[0].port, Some(8000));
    let inf = &by_name["routing-overhead-epp"].spec.rules[0];
    assert_eq!(inf.matches[0].path.value, "/epp");
    assert_eq!(inf.backend_refs[0].kind, "InferencePool");
    assert_eq!(
        inf.backend_refs[0].group.as_deref(),
        Some("inference.networking.k8s.io")
    );
    assert_eq!(inf.backend_refs[0].name, "routing-overhead");
    for r in &rs {
        assert_eq!(r.spec.parent_refs[0].name, "routing-overhead-gateway");
    }

    // The Job: one pod running the whole plan, against the gateway's EPP route.
    let j = job(&ms);
    let js = j.spec.as_ref().unwrap();
    assert_eq!(js.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((js.completions, js.parallelism), (Some(1), Some(1)));
    assert_eq!(js.backoff_limit, Some(0));
    let pod = js.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let anti = pod
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    assert_eq!(
        anti.preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()[0]
            .pod_affinity_term
            .topology_key,
        "kubernetes.io/hostname"
    );
    let run = pod.containers[0].args.clone().unwrap();
    assert_eq!(
        run,
        [
            "run",
            "/config/scenario.yaml",
            "--scenario",
            "routing-overhead",
            "--url",
            "http://routing-overhead-gateway.inferbench.svc.cluster.local/epp",
            "--no-history",
            "--report-stdout",
            "--out",
            "/results",
        ]
    );

    // The scenario the pods run: arms turned into URLs in the cluster, still a valid file.
    let data = config_map(&ms, "routing-overhead-scenario")
        .data
        .clone()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.yaml");
    std::fs::write(&path, &data["scenario.yaml"]).unwrap();
    let pod_cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}\n{}", data["scenario.yaml"]));
    assert_eq!(pod_cfg.file.scenarios.len(), 1);
    let arms: Vec<(String, Option<String>)> = pod_cfg.file.scenarios[0]
        .arms
        .iter()
        .map(|a| match a {
            inferbench_config::Arm::Custom(c) => (c.name.clone(), c.url.clone()),
            inferbench_config::Arm::Named(n) => (n.clone(), None),
        })
        .collect();
    let gw = "http://routing-overhead-gateway.inferbench.svc.cluster.local";
    assert_eq!(
        arms,
        [
            (
                "direct".to_string(),
                Some("http://routing-overhead.inferbench.svc.cluster.local:8000".to_string())
            ),
            ("proxy-rr".to_string(), Some(format!("{gw}/baseline"))),
            ("epp".to_string(), Some(format!("{gw}/epp"))),
        ]
    );
}

#[test]
fn several_models_get_a_pool_each_bbr_and_header_routes() {
    let cfg = load("multi-model-routing.yaml");
    let ms = render(&cfg, &opts(Some("bbr-latency"))).unwrap();
    check_common(&ms, "inferbench");
    let fleets: Vec<&Deployment> = deployments(&ms)
        .into_iter()
        .filter(|d| d.metadata.labels.as_ref().unwrap()["app.kubernetes.io/component"] == "fleet")
        .collect();
    assert_eq!(fleets.len(), 2);
    assert_eq!(
        args(deployment(&ms, "bbr-latency-mock-model"))[6],
        "mock-model"
    );
    assert_eq!(
        args(deployment(&ms, "bbr-latency-mock-lora"))[6],
        "mock-lora"
    );
    let bbr = deployment(&ms, "bbr-latency-bbr");
    assert_eq!(
        bbr.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .as_deref(),
        Some("registry.k8s.io/gateway-api-inference-extension/bbr:v1.5.0")
    );
    // Each pool's InferencePool selects its own fleet.
    for ip in pools(&ms) {
        let fleet = deployment(&ms, ip.metadata.name.as_deref().unwrap());
        assert_eq!(
            Some(&ip.spec.selector.match_labels),
            fleet
                .spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .labels
                .as_ref()
        );
    }
    // Routes match the model header and send each model to its own backend.
    for r in routes(&ms) {
        assert_eq!(r.spec.rules.len(), 2);
        for rule in &r.spec.rules {
            let h = &rule.matches[0].headers[0];
            assert_eq!(h.name, "X-Gateway-Model-Name");
            assert_eq!(
                rule.backend_refs[0].name,
                format!("bbr-latency-{}", h.value)
            );
        }
    }
}

#[test]
fn lora_adapters_ride_on_the_base_pool() {
    let cfg = load("multi-model-routing.yaml");
    let ms = render(&cfg, &opts(Some("lora-mix"))).unwrap();
    check_common(&ms, "inferbench");
    assert_eq!(
        args(deployment(&ms, "lora-mix")),
        [
            "mock",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "--model",
            "mock-model",
            "--lora-adapters",
            "mock-lora"
        ]
    );
    // Adapters make it multi-model: BBR is there; one pool, so routes need no header.
    deployment(&ms, "lora-mix-bbr");
    assert!(
        routes(&ms)
            .iter()
            .all(|r| r.spec.rules.len() == 1 && r.spec.rules[0].matches[0].headers.is_empty())
    );
}

#[test]
fn a_file_of_several_scenarios_needs_one_named() {
    let cfg = load("multi-model-routing.yaml");
    let e = render(&cfg, &opts(None)).unwrap_err();
    assert!(
        matches!(
            e,
            RenderError::Flag {
                flag: "--scenario",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("bbr-latency"), "{e}");
    let e = render(&cfg, &opts(Some("nope"))).unwrap_err();
    assert!(
        e.to_string().starts_with("--scenario: no scenario `nope`"),
        "{e}"
    );
}

#[test]
fn a_prompts_file_travels_with_the_scenario() {
    let cfg = load("prompts-file.yaml");
    let ms = render(&cfg, &opts(Some("bench-c5"))).unwrap();
    check_common(&ms, "inferbench");
    let data = config_map(&ms, "bench-c5-scenario").data.clone().unwrap();
    assert_eq!(
        data["prompts.jsonl"],
        std::fs::read_to_string(example("prompts.jsonl")).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    for (k, v) in &data {
        std::fs::write(dir.path().join(k), v).unwrap();
    }
    let pod_cfg = Config::load(&dir.path().join("scenario.yaml")).unwrap();
    assert_eq!(pod_cfg.file.scenarios.len(), 1);
    assert_eq!(*pod_cfg.file.scenarios[0].name, "bench-c5");
}

#[test]
fn a_trace_travels_with_the_scenario_and_its_instants_are_sharded() {
    let cfg = load("trace-replay.yaml");
    for (scenario, file, key) in [
        (
            "azure-conversation",
            "traces/azure-conv-sample.csv",
            "trace.csv",
        ),
        (
            "mooncake-prefixes",
            "traces/mooncake-sample.jsonl",
            "trace.jsonl",
        ),
    ] {
        let ms = render(&cfg, &opts(Some(scenario))).unwrap();
        check_common(&ms, "inferbench");
        let data = config_map(&ms, &format!("{scenario}-scenario"))
            .data
            .clone()
            .unwrap();
        assert_eq!(data[key], std::fs::read_to_string(example(file)).unwrap());
        // The pods read the scenario beside the trace: it validates there (the trace is read
        // whole at validation) with the trace's settings kept.
        let dir = tempfile::tempdir().unwrap();
        for (k, v) in &data {
            std::fs::write(dir.path().join(k), v).unwrap();
        }
        let pod_cfg = Config::load(&dir.path().join("scenario.yaml"))
            .unwrap_or_else(|e| panic!("{scenario}: {e}"));
        let s = &pod_cfg.file.scenarios[0];
        let t = s.workload.trace.as_ref().unwrap();
        assert_eq!(t.path.value, key);
        let scale = t.time_scale.as_ref().map(|x| x.value);
        assert_eq!(scale, (scenario == "mooncake-prefixes").then_some(0.5));
        // The trace's own instants split over the Job's pods, from one start.
        let js = job(&ms).spec.clone().unwrap();
        assert_eq!((js.completions, js.parallelism), (Some(4), Some(4)));
        let run = js.template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        let i = run.iter().position(|a| a == "--shard").unwrap();
        assert_eq!(run[i + 1], "$(JOB_COMPLETION_INDEX)/4");
    }
}

#[test]
fn a_file_too_big_for_a_config_map_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = String::from("TIMESTAMP,ContextTokens,GeneratedTokens\n");
    for i in 0..80_000 {
        big.push_str(&format!("{}.5,100,10\n", i));
    }
    std::fs::write(dir.path().join("big.csv"), big).unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        "targets: [{name: t, url: embedded, models: [m]}]\nscenarios:\n  - name: big\n    workload:\n      trace: {path: big.csv, format: azure}\n",
    )
    .unwrap();
    let cfg = Config::load(&dir.path().join("s.yaml")).unwrap();
    let e = render(&cfg, &opts(None)).unwrap_err().to_string();
    assert!(e.contains("scenarios[0].workload.trace.path"), "{e}");
    assert!(e.contains("above a ConfigMap's 1048576"), "{e}");
}

#[test]
fn named_picker_arms_get_their_own_epp_with_their_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arms.yaml");
    std::fs::copy(
        example("epp-config.yaml"),
        dir.path().join("epp-config.yaml"),
    )
    .unwrap();
    std::fs::write(
        &path,
        r#"targets: [{name: t, url: embedded, models: [m]}]
scenarios:
  - name: Pickers Compared
    load: {rate: 10}
    duration: 10s
    arms:
      - proxy-rr
      - epp
      - {name: queue-only, queue: 1, kv_cache: 0, prefix: 0}
      - {name: from-file, picker_config: epp-config.yaml, lora: 2}
      - {name: rr, picker: round-robin}
"#,
    )
    .unwrap();
    let cfg = Config::load(&path).unwrap();
    let o = RenderOptions {
        epp_api: EppApi::LlmD,
        namespace: "bench".to_string(),
        ..one_pod(None)
    };
    let ms = render(&cfg, &o).unwrap();
    check_common(&ms, "bench");
    let names: Vec<&str> = pools(&ms)
        .iter()
        .map(|p| p.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "pickers-compared",
            "pickers-compared-queue-only",
            "pickers-compared-from-file"
        ]
    );
    let epc = |name: &str| -> EndpointPickerConfig {
        serde_saphyr::from_str(&config_map(&ms, name).data.as_ref().unwrap()["epp-config.yaml"])
            .unwrap()
    };
    let q = epc("pickers-compared-queue-only-epp");
    assert_eq!(q.api_version, "llm-d.ai/v1alpha1");
    assert_eq!(q.weight_of("queue-scorer"), 1.0);
    assert_eq!(q.weight_of("prefix-cache-scorer"), 0.0);
    assert!(!q.plugins.iter().any(|p| p.kind == "prefix-cache-scorer"));
    let f = epc("pickers-compared-from-file-epp");
    assert_eq!(f.api_version, "llm-d.ai/v1alpha1");
    assert_eq!(f.weight_of("prefix-cache-scorer"), 3.0);
    assert_eq!(f.weight_of("lora-affinity-scorer"), 2.0);
    let prefix = f
        .plugins
        .iter()
        .find(|p| p.kind == "prefix-cache-scorer")
        .unwrap();
    assert_eq!(
        prefix.parameters.as_ref().unwrap()["lruCapacityPerServer"],
        31250
    );
    // Objectives use the llm-d group, and the EPP may read them there.
    for m in &ms {
        if let Manifest::InferenceObjective(o) = m {
            assert_eq!(o.api_version, "llm-d.ai/v1alpha2");
            assert_eq!(o.spec.pool_ref.kind, "InferencePool");
        }
        if let Manifest::Role(r) = m
            && m.name() == "pickers-compared-picker"
        {
            let groups: Vec<String> = r
                .rules
                .as_ref()
                .unwrap()
                .iter()
                .flat_map(|r| r.api_groups.clone().unwrap())
                .collect();
            assert!(groups.contains(&"llm-d.ai".to_string()), "{groups:?}");
        }
    }
    // The round-robin arm and proxy-rr both become the gateway's own balancing.
    let data = config_map(&ms, "pickers-compared-scenario")
        .data
        .clone()
        .unwrap();
    let gw = "http://pickers-compared-gateway.bench.svc.cluster.local";
    assert!(data["scenario.yaml"].contains(&format!("{gw}/queue-only")));
    assert_eq!(
        data["scenario.yaml"]
            .matches(&format!("{gw}/baseline"))
            .count(),
        2
    );
    assert_eq!(routes(&ms).len(), 4, "baseline + three EPP variants");
}

#[test]
fn bad_flags_are_named() {
    let cfg = load("routing-overhead.yaml");
    let cases: [(RenderOptions, &str); 5] = [
        (
            RenderOptions {
                shards: 0,
                ..opts(None)
            },
            "--shards",
        ),
        (
            RenderOptions {
                replicas: 0,
                ..opts(None)
            },
            "--replicas",
        ),
        (
            RenderOptions {
                namespace: "Bad_NS".into(),
                ..opts(None)
            },
            "--namespace",
        ),
        (
            RenderOptions {
                load_memory: "lots".into(),
                ..opts(None)
            },
            "--load-memory",
        ),
        (
            RenderOptions {
                gateway_url: Some("https://x".into()),
                ..opts(None)
            },
            "--gateway-url",
        ),
    ];
    for (o, flag) in cases {
        let e = render(&cfg, &o).unwrap_err();
        assert!(e.to_string().starts_with(flag), "{flag}: {e}");
    }
}

#[test]
fn a_flat_load_is_split_over_an_indexed_job() {
    let cfg = load("steady-chat-rag.yaml");
    let name = cfg.file.scenarios[0].name.value.clone();
    let ms = render(&cfg, &opts(Some(&name))).unwrap();
    let js = job(&ms).spec.clone().unwrap();
    assert_eq!(js.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((js.completions, js.parallelism), (Some(4), Some(4)));
    let run = js.template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    let at = |flag: &str| {
        run.iter()
            .position(|a| a == flag)
            .map(|i| run[i + 1].as_str())
    };
    // Every pod: its shard of the one plan, all from one instant.
    assert_eq!(at("--shard"), Some("$(JOB_COMPLETION_INDEX)/4"));
    assert_eq!(at("--start-at"), Some("1900000000000"));
    assert_eq!(at("--scenario"), Some(name.as_str()));
    assert!(run.contains(&"--report-stdout".to_string()));
}

#[test]
fn rendering_is_deterministic() {
    let cfg = load("routing-overhead.yaml");
    let a = to_yaml(&render(&cfg, &one_pod(None)).unwrap()).unwrap();
    let b = to_yaml(&render(&cfg, &one_pod(None)).unwrap()).unwrap();
    assert_eq!(a, b);
}

/// Opt-in: pipes a render through `scripts/k8s-validate` (vendored CRDs and schemas) when
/// `INFERBENCH_K8S_VALIDATE=1`.
#[test]
fn the_validator_accepts_the_examples() {
    if std::env::var("INFERBENCH_K8S_VALIDATE").as_deref() != Ok("1") {
        eprintln!("skipped: set INFERBENCH_K8S_VALIDATE=1 to run scripts/k8s-validate");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/k8s-validate");
    for (file, o) in [
        ("routing-overhead.yaml", one_pod(None)),
        ("multi-model-routing.yaml", opts(Some("bbr-latency"))),
        ("multi-model-routing.yaml", opts(Some("lora-mix"))),
        ("steady-chat-rag.yaml", opts(Some("steady-chat-10"))),
        ("shared-prefix.yaml", opts(Some("shared-prefix"))),
    ] {
        let yaml = to_yaml(&render(&load(file), &o).unwrap()).unwrap();
        let mut child = std::process::Command::new(&script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Every document was checked, and the built-in and CRD kinds are among them.
        assert!(text.contains(" 0 errors; kinds: "), "{file}: {text}");
        for kind in ["Deployment=", "InferencePool=", "HTTPRoute=", "Job=1"] {
            assert!(text.contains(kind), "{file}: {kind} in {text}");
        }
    }
}

#[test]
fn models_whose_names_sanitize_alike_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clash.yaml");
    std::fs::write(
        &path,
        "targets: [{name: t, url: embedded}]\nscenarios:\n  - name: clash\n    load: {rate: 1}\n    duration: 1s\n    workload:\n      models: [{name: a.b}, {name: a-b}]\n",
    )
    .unwrap();
    let cfg = Config::load(&path).unwrap();
    let e = render(&cfg, &opts(None)).unwrap_err();
    assert!(
        matches!(&e, RenderError::Collision { kind, name } if kind == "Deployment" && name == "clash-a-b"),
        "{e}"
    );
}
