//! Every endpoint and error path of `inferbench mock`, over real HTTP on port 0.

mod common;

use std::time::Duration;

use common::*;
use inferbench_mock::{FaultConfig, InstanceConfig, tokens};

fn fast() -> InstanceConfig {
    InstanceConfig {
        ttft_ms: 2.0,
        itl_ms: 1.0,
        ..Default::default()
    }
}

#[tokio::test]
async fn streaming_chat_ends_in_done_with_exact_usage() {
    let fleet = fleet(2, fast()).await;
    let c = client();
    for url in fleet.urls() {
        let r = post(
            &c,
            &format!("{url}/v1/chat/completions"),
            &chat_body("mock-model", "Hello there, friend", 17, true),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/event-stream")
        );
        assert_eq!(
            r.header("x-inferbench-endpoint").unwrap(),
            url.trim_start_matches("http://")
        );
        let events = r.events();
        assert_eq!(events.last().unwrap().1, "[DONE]");
        let usage: serde_json::Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
        assert_eq!(usage["usage"]["completion_tokens"], 17);
        assert_eq!(
            usage["usage"]["prompt_tokens"],
            tokens::count("Hello there, friend")
        );
        assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
        // role chunk + 17 token chunks + usage + DONE
        assert_eq!(events.len(), 1 + 17 + 2);
        let first: serde_json::Value = serde_json::from_str(&events[0].1).unwrap();
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        let last_tok: serde_json::Value = serde_json::from_str(&events[17].1).unwrap();
        assert_eq!(last_tok["choices"][0]["finish_reason"], "length");
        assert_eq!(last_tok["model"], "mock-model");
    }
}

#[tokio::test]
async fn completions_unary_and_streaming() {
    let fleet = fleet(1, fast()).await;
    let c = client();
    let url = &fleet.urls()[0];
    let body = serde_json::json!({"model": "mock-model", "prompt": "Once upon a time", "max_tokens": 9, "ignore_eos": true}).to_string();
    let r = post(&c, &format!("{url}/v1/completions"), &body).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["completion_tokens"], 9);
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    assert_eq!(tokens::count(v["choices"][0]["text"].as_str().unwrap()), 9);
    assert_eq!(v["choices"][0]["finish_reason"], "length");

    let body = serde_json::json!({"model": "mock-model", "prompt": [1, 2, 3], "max_tokens": 4, "ignore_eos": true, "stream": true}).to_string();
    let r = post(&c, &format!("{url}/v1/completions"), &body).await;
    let events = r.events();
    // No usage chunk without include_usage; 4 tokens then DONE.
    assert_eq!(events.len(), 5);
    let e: serde_json::Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(e["object"], "text_completion");
    assert!(e["choices"][0]["text"].as_str().unwrap().starts_with(' '));
}

#[tokio::test]
async fn unary_chat_and_output_length_without_ignore_eos() {
    let fleet = fleet(
        1,
        InstanceConfig {
            default_max_tokens: 50,
            ..fast()
        },
    )
    .await;
    let c = client();
    let url = &fleet.urls()[0];
    let mut stops = 0;
    for _ in 0..20 {
        let body = serde_json::json!({"model": "mock-model", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 30, "min_tokens": 5}).to_string();
        let v = post(&c, &format!("{url}/v1/chat/completions"), &body)
            .await
            .json();
        assert_eq!(v["object"], "chat.completion");
        let n = v["usage"]["completion_tokens"].as_u64().unwrap();
        assert!((5..=30).contains(&n), "{n}");
        assert_eq!(
            tokens::count(v["choices"][0]["message"]["content"].as_str().unwrap()) as u64,
            n
        );
        let reason = v["choices"][0]["finish_reason"].as_str().unwrap();
        if reason == "stop" {
            stops += 1;
            assert!(n < 30);
        } else {
            assert_eq!(reason, "length");
        }
    }
    assert!(
        stops > 0 && stops < 20,
        "a natural stop is drawn from the seed ({stops} of 20 stopped)"
    );
}

#[tokio::test]
async fn models_health_and_lora_management() {
    let fleet = fleet(
        1,
        InstanceConfig {
            lora_adapters: vec!["sql".into()],
            ..fast()
        },
    )
    .await;
    let c = client();
    let url = &fleet.urls()[0];
    let ids = |v: serde_json::Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(get(&c, &format!("{url}/v1/models")).await.json()),
        vec!["mock-model", "sql"]
    );
    let h = get(&c, &format!("{url}/health")).await;
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());

    let r = post(
        &c,
        &format!("{url}/v1/load_lora_adapter"),
        r#"{"lora_name":"chat","lora_path":"/x"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        ids(get(&c, &format!("{url}/v1/models")).await.json()),
        vec!["mock-model", "chat", "sql"]
    );
    let r = post(
        &c,
        &format!("{url}/v1/load_lora_adapter"),
        r#"{"lora_name":"chat","lora_path":"/x"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    // The adapter serves, and answers in its own name.
    let r = post(
        &c,
        &format!("{url}/v1/chat/completions"),
        &chat_body("chat", "x", 2, false),
    )
    .await;
    assert_eq!(r.json()["model"], "chat");
    let r = post(
        &c,
        &format!("{url}/v1/unload_lora_adapter"),
        r#"{"lora_name":"chat"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = post(
        &c,
        &format!("{url}/v1/unload_lora_adapter"),
        r#"{"lora_name":"chat"}"#,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        &c,
        &format!("{url}/v1/chat/completions"),
        &chat_body("chat", "x", 2, false),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        &c,
        &format!("{url}/v1/load_lora_adapter"),
        r#"{"lora_path":"/x"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn bad_input_gets_openai_errors() {
    let fleet = fleet(
        1,
        InstanceConfig {
            max_model_len: 100,
            max_body_bytes: 10_000,
            ..fast()
        },
    )
    .await;
    let c = client();
    let url = &fleet.urls()[0];
    let chat = format!("{url}/v1/chat/completions");
    let big = "x".repeat(20_000);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "malformed JSON",
            "{\"model\": ".to_string(),
            400,
            "BadRequestError",
        ),
        (
            "no model",
            r#"{"messages":[{"role":"user","content":"x"}]}"#.to_string(),
            400,
            "BadRequestError",
        ),
        (
            "unknown model",
            chat_body("gpt-9", "x", 2, false),
            404,
            "NotFoundError",
        ),
        (
            "max_tokens beyond max_model_len",
            chat_body("mock-model", "x", 500, false),
            400,
            "BadRequestError",
        ),
        (
            "oversized body",
            chat_body("mock-model", &big, 2, false),
            413,
            "BadRequestError",
        ),
        (
            "n > 1",
            r#"{"model":"mock-model","messages":[{"role":"user","content":"x"}],"n":2}"#
                .to_string(),
            400,
            "BadRequestError",
        ),
        (
            "wrong type",
            r#"{"model":"mock-model","messages":"hello"}"#.to_string(),
            400,
            "BadRequestError",
        ),
    ];
    for (what, body, status, kind) in cases {
        let r = post(&c, &chat, &body).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["type"], kind, "{what}");
        assert_eq!(v["error"]["code"], status, "{what}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 5, "{what}");
    }
    let r = get(&c, &format!("{url}/v2/nothing")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], 404);
    // The server is still fine afterwards.
    assert_eq!(
        post(&c, &chat, &chat_body("mock-model", "x", 2, false))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn fault_header_forces_each_fault() {
    let fleet = fleet(
        1,
        InstanceConfig {
            faults: FaultConfig {
                stall_ms: 300,
                ..Default::default()
            },
            ..fast()
        },
    )
    .await;
    let c = client();
    let chat = format!("{}/v1/chat/completions", fleet.urls()[0]);
    for code in ["429", "500", "503"] {
        let r = request(
            &c,
            "POST",
            &chat,
            &chat_body("mock-model", "x", 4, true),
            &[("x-mock-error", code)],
        )
        .await;
        assert_eq!(r.status.to_string(), code);
        assert_eq!(r.json()["error"]["code"].to_string(), code);
    }
    let r = request(
        &c,
        "POST",
        &chat,
        &chat_body("mock-model", "x", 10, true),
        &[("x-mock-error", "abort")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.error.is_some(), "the stream is cut");
    assert!(!r.text().contains("[DONE]"));
    assert_eq!(
        r.events().len(),
        1 + 5,
        "role + half the tokens before the cut"
    );

    let r = request(
        &c,
        "POST",
        &chat,
        &chat_body("mock-model", "x", 10, true),
        &[("x-mock-error", "garbage")],
    )
    .await;
    assert!(!r.text().contains("[DONE]"));
    assert!(
        r.events()
            .iter()
            .any(|(_, d)| serde_json::from_str::<serde_json::Value>(d).is_err())
    );

    let r = request(
        &c,
        "POST",
        &chat,
        &chat_body("mock-model", "x", 10, true),
        &[("x-mock-error", "stall")],
    )
    .await;
    assert!(
        r.text().contains("[DONE]"),
        "a 300 ms stall ends and the stream completes"
    );
    let ev = r.events();
    let gap = ev.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(gap >= Duration::from_millis(300), "largest gap {gap:?}");

    let r = request(
        &c,
        "POST",
        &chat,
        &chat_body("mock-model", "x", 10, false),
        &[("x-mock-error", "abort")],
    )
    .await;
    assert!(r.error.is_some());
    let r = request(
        &c,
        "POST",
        &chat,
        &chat_body("mock-model", "x", 10, false),
        &[("x-mock-error", "teapot")],
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn configured_faults_error_rate_health_and_wrong_model() {
    let faults = FaultConfig {
        error_rate: 0.5,
        error_statuses: vec![503],
        health_fail: true,
        wrong_model: Some("other-model".into()),
        ..Default::default()
    };
    let fleet = fleet(1, InstanceConfig { faults, ..fast() }).await;
    let c = client();
    let url = &fleet.urls()[0];
    assert_eq!(get(&c, &format!("{url}/health")).await.status, 503);
    let mut errors = 0;
    for _ in 0..100 {
        let r = post(
            &c,
            &format!("{url}/v1/chat/completions"),
            &chat_body("mock-model", "x", 1, false),
        )
        .await;
        match r.status {
            503 => errors += 1,
            200 => assert_eq!(r.json()["model"], "other-model"),
            s => panic!("unexpected {s}"),
        }
    }
    assert!((30..=70).contains(&errors), "{errors} of 100 at rate 0.5");
}

#[tokio::test]
async fn abort_rate_cuts_streams() {
    let fleet = fleet(
        1,
        InstanceConfig {
            faults: FaultConfig {
                abort_rate: 1.0,
                ..Default::default()
            },
            ..fast()
        },
    )
    .await;
    let c = client();
    let r = post(
        &c,
        &format!("{}/v1/chat/completions", fleet.urls()[0]),
        &chat_body("mock-model", "x", 8, true),
    )
    .await;
    assert!(r.error.is_some());
    // The instance keeps serving and its engine is empty again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fleet.instances()[0].engine().snapshot().running, 0);
}

#[tokio::test]
async fn slow_start_delays_headers() {
    let fleet = fleet(
        1,
        InstanceConfig {
            faults: FaultConfig {
                slow_start_ms: 200,
                ..Default::default()
            },
            ..fast()
        },
    )
    .await;
    let c = client();
    let r = post(
        &c,
        &format!("{}/v1/chat/completions", fleet.urls()[0]),
        &chat_body("mock-model", "x", 1, true),
    )
    .await;
    assert!(r.frames[0].0 - r.sent >= Duration::from_millis(200));
}

#[tokio::test]
async fn echo_mode_returns_the_prompt() {
    let fleet = fleet(
        1,
        InstanceConfig {
            output: inferbench_mock::OutputMode::Echo,
            ..fast()
        },
    )
    .await;
    let c = client();
    let prompt = "The quick brown fox";
    let r = post(
        &c,
        &format!("{}/v1/chat/completions", fleet.urls()[0]),
        &chat_body("mock-model", prompt, 4, false),
    )
    .await;
    assert_eq!(r.json()["choices"][0]["message"]["content"], prompt);
}

#[tokio::test]
async fn tokens_per_chunk_packs_tokens() {
    let fleet = fleet(
        1,
        InstanceConfig {
            tokens_per_chunk: 4,
            ..fast()
        },
    )
    .await;
    let c = client();
    let r = post(
        &c,
        &format!("{}/v1/chat/completions", fleet.urls()[0]),
        &chat_body("mock-model", "x", 10, true),
    )
    .await;
    let events = r.events();
    // role + ceil(10/4) token chunks + usage + DONE
    assert_eq!(events.len(), 1 + 3 + 2);
    let text: String = events[1..4]
        .iter()
        .map(|(_, d)| {
            serde_json::from_str::<serde_json::Value>(d).unwrap()["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(tokens::count(&text), 10);
    let usage: serde_json::Value = serde_json::from_str(&events[4].1).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 10);
}
