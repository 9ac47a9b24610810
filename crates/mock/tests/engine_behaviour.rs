//! The simulated engine as a picker and a load generator see it: over HTTP and `/metrics`.

mod common;

use std::time::Duration;

use common::*;
use inferbench_mock::InstanceConfig;
use proptest::prelude::*;

async fn scrape(c: &HttpClient, url: &str) -> String {
    get(c, &format!("{url}/metrics")).await.text()
}

#[tokio::test]
async fn more_than_max_num_seqs_queue_and_show_in_metrics() {
    let fleet = fleet(
        1,
        InstanceConfig {
            max_num_seqs: 2,
            ttft_ms: 5.0,
            itl_ms: 20.0,
            ..Default::default()
        },
    )
    .await;
    let url = fleet.urls()[0].clone();
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            post(
                &c,
                &format!("{url}/v1/chat/completions"),
                &chat_body("mock-model", "x", 20, true),
            )
            .await
        }));
    }
    // Wait until all five arrived (2 running + 3 waiting), then read the gauges.
    let mut text = String::new();
    for _ in 0..200 {
        text = scrape(&c, &url).await;
        if metric(
            &text,
            "vllm:num_requests_waiting{model_name=\"mock-model\"}",
        ) == 3.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        metric(
            &text,
            "vllm:num_requests_waiting{model_name=\"mock-model\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "vllm:num_requests_running{model_name=\"mock-model\"}"
        ),
        2.0
    );
    for t in tasks {
        assert!(t.await.unwrap().text().contains("[DONE]"));
    }
    let text = scrape(&c, &url).await;
    assert_eq!(
        metric(
            &text,
            "vllm:num_requests_waiting{model_name=\"mock-model\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(
            &text,
            "vllm:request_success_total{model_name=\"mock-model\",finish_reason=\"length\"}"
        ),
        5.0
    );
    assert_eq!(
        metric(
            &text,
            "vllm:generation_tokens_total{model_name=\"mock-model\"}"
        ),
        100.0
    );
    // Three requests waited at least one whole request (5 + 19 × 20 ms).
    let queued_over_300ms = metric(
        &text,
        "vllm:request_queue_time_seconds_count{model_name=\"mock-model\"}",
    ) - metric(
        &text,
        "vllm:request_queue_time_seconds_bucket{model_name=\"mock-model\",le=\"0.3\"}",
    );
    assert!(queued_over_300ms >= 1.0, "{text}");
}

#[tokio::test]
async fn kv_usage_rises_while_running_and_falls_after() {
    let fleet = fleet(
        1,
        InstanceConfig {
            kv_blocks: 100,
            block_size: 16,
            ttft_ms: 5.0,
            itl_ms: 10.0,
            ..Default::default()
        },
    )
    .await;
    let url = fleet.urls()[0].clone();
    let c = client();
    let prompt = "word ".repeat(320); // 320 tokens = 20 blocks
    let (c2, url2) = (c.clone(), url.clone());
    let task = tokio::spawn(async move {
        post(
            &c2,
            &format!("{url2}/v1/chat/completions"),
            &chat_body("mock-model", &prompt, 40, true),
        )
        .await
    });
    let kv = "vllm:kv_cache_usage_perc{model_name=\"mock-model\"}";
    let mut peak: f64 = 0.0;
    let mut seen = Vec::new();
    while !task.is_finished() {
        let text = scrape(&c, &url).await;
        let v = metric(&text, kv);
        assert_eq!(
            v,
            metric(
                &text,
                "vllm:gpu_cache_usage_perc{model_name=\"mock-model\"}"
            ),
            "both names, one value"
        );
        peak = peak.max(v);
        seen.push(v);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.await.unwrap();
    assert!(
        peak >= 0.20,
        "prompt blocks alone are 20% of the cache; saw {seen:?}"
    );
    assert!(
        peak <= 0.23,
        "prompt + 40 tokens is at most 23 blocks; saw {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[1] >= w[0] || w[1] == 0.0),
        "usage only grows while running: {seen:?}"
    );
    assert_eq!(metric(&scrape(&c, &url).await, kv), 0.0);
}

#[tokio::test]
async fn prefix_cache_hit_lowers_ttft_and_reports_cached_tokens() {
    let fleet = fleet(
        1,
        InstanceConfig {
            ttft_ms: 10.0,
            prefill_ms_per_token: 1.0,
            itl_ms: 1.0,
            ..Default::default()
        },
    )
    .await;
    let url = fleet.urls()[0].clone();
    let c = client();
    let prompt = "alpha ".repeat(299) + "alpha";
    let first = post(
        &c,
        &format!("{url}/v1/chat/completions"),
        &chat_body("mock-model", &prompt, 2, true),
    )
    .await;
    let second = post(
        &c,
        &format!("{url}/v1/chat/completions"),
        &chat_body("mock-model", &prompt, 2, true),
    )
    .await;
    let usage = |r: &Reply| -> serde_json::Value {
        let ev = r.events();
        serde_json::from_str(&ev[ev.len() - 2].1).unwrap()
    };
    let prompt_tokens = usage(&first)["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(prompt_tokens, 300);
    assert_eq!(
        usage(&first)["usage"]["prompt_tokens_details"]["cached_tokens"],
        0
    );
    assert_eq!(
        usage(&second)["usage"]["prompt_tokens_details"]["cached_tokens"],
        288,
        "18 whole blocks of 16"
    );
    let ttft1 = first.first_token_at().unwrap() - first.sent;
    let ttft2 = second.first_token_at().unwrap() - second.sent;
    assert!(
        ttft1 >= Duration::from_millis(310),
        "10 + 300 × 1 ms, got {ttft1:?}"
    );
    assert!(
        ttft2 >= Duration::from_millis(22),
        "10 + 12 uncached × 1 ms, got {ttft2:?}"
    );
    assert!(
        ttft2 + Duration::from_millis(200) < ttft1,
        "cached prefill skips 288 ms: {ttft1:?} vs {ttft2:?}"
    );
    let text = scrape(&c, &url).await;
    assert_eq!(
        metric(
            &text,
            "vllm:prefix_cache_queries_total{model_name=\"mock-model\"}"
        ),
        600.0
    );
    assert_eq!(
        metric(
            &text,
            "vllm:prefix_cache_hits_total{model_name=\"mock-model\"}"
        ),
        288.0
    );
}

#[tokio::test]
async fn lora_slots_make_a_request_wait() {
    let fleet = fleet(
        1,
        InstanceConfig {
            lora_adapters: vec!["a".into(), "b".into()],
            max_loras: 1,
            ttft_ms: 5.0,
            itl_ms: 10.0,
            ..Default::default()
        },
    )
    .await;
    let url = fleet.urls()[0].clone();
    let c = client();
    let (c1, u1) = (c.clone(), url.clone());
    let a = tokio::spawn(async move {
        post(
            &c1,
            &format!("{u1}/v1/chat/completions"),
            &chat_body("a", "x", 30, true),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (c2, u2) = (c.clone(), url.clone());
    let b = tokio::spawn(async move {
        post(
            &c2,
            &format!("{u2}/v1/chat/completions"),
            &chat_body("b", "x", 2, true),
        )
        .await
    });
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(&c, &url).await;
        if text.contains("waiting_lora_adapters=\"b\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        text.contains("running_lora_adapters=\"a\",waiting_lora_adapters=\"b\",max_lora=\"1\""),
        "{text}"
    );
    // A base-model request is not held up by the adapter wait.
    let base = post(
        &c,
        &format!("{url}/v1/chat/completions"),
        &chat_body("mock-model", "x", 1, false),
    )
    .await;
    assert_eq!(base.status, 200);
    assert!(!b.is_finished(), "b still waits for a's slot");
    let a = a.await.unwrap();
    let b = b.await.unwrap();
    let a_end = a.frames.last().unwrap().0;
    let b_first = b.first_token_at().unwrap();
    assert!(b_first > a_end, "b's first token comes after a ends");
    assert_eq!(
        b.events()
            .iter()
            .filter(|(_, d)| d.contains("\"model\":\"b\""))
            .count(),
        4
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Token counts are exact: prompt tokens as tiktoken counts them, output tokens = max_tokens
    /// with ignore_eos, one chunk per token, and the text re-tokenizes to the same count.
    #[test]
    fn token_counts_are_exact(words in proptest::collection::vec("[a-zA-Z]{1,12}", 1..40), max_tokens in 1usize..80, stream: bool, chat: bool) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let fleet = fleet(1, InstanceConfig { ttft_ms: 0.0, itl_ms: 0.0, ..Default::default() }).await;
            let c = client();
            let prompt = words.join(" ");
            let (path, body) = if chat {
                ("v1/chat/completions", chat_body("mock-model", &prompt, max_tokens, stream))
            } else {
                ("v1/completions", serde_json::json!({"model": "mock-model", "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": true, "stream": stream, "stream_options": {"include_usage": true}}).to_string())
            };
            let r = post(&c, &format!("{}/{path}", fleet.urls()[0]), &body).await;
            let (usage, text) = if stream {
                let ev = r.events();
                let usage: serde_json::Value = serde_json::from_str(&ev[ev.len() - 2].1).unwrap();
                let pieces: Vec<String> = ev.iter().filter_map(|(_, d)| {
                    let v: serde_json::Value = serde_json::from_str(d).ok()?;
                    let ch = &v["choices"][0];
                    ch["delta"]["content"].as_str().or(ch["text"].as_str()).filter(|t| !t.is_empty()).map(str::to_string)
                }).collect();
                assert_eq!(pieces.len(), max_tokens, "one chunk per token");
                (usage["usage"].clone(), pieces.concat())
            } else {
                let v = r.json();
                let ch = &v["choices"][0];
                let t = ch["message"]["content"].as_str().or(ch["text"].as_str()).unwrap().to_string();
                (v["usage"].clone(), t)
            };
            assert_eq!(usage["completion_tokens"].as_u64().unwrap() as usize, max_tokens);
            assert_eq!(usage["prompt_tokens"].as_u64().unwrap() as usize, inferbench_mock::tokens::count(&prompt));
            assert_eq!(inferbench_mock::tokens::count(&text), max_tokens);
            fleet.shutdown(Duration::from_secs(1)).await;
        });
    }
}
