//! Many jobs at once: concurrent execute requests, a parallel loop and the embedded worker's
//! four slots all writing to one database, on both backends; every job completes and every
//! step runs exactly once.

use std::time::Duration;

use serde_json::json;

use crate::server_harness::{Home, serve_test, step};

const WORKSPACE: &str = r#"
tasks:
  fan:
    input:
      n: { type: integer, required: true }
    flow:
      items:
        type: script
        script: |
          echo 'OUTPUT: [1, 2, 3, 4, 5, 6, 7, 8]'
      square:
        depends_on: [items]
        for_each: "{{ items.output }}"
        type: script
        input: { n: "{{ input.n }}", item: "{{ each.item }}" }
        script: |
          echo "OUTPUT: {\"value\": $(( INPUT_N * INPUT_ITEM ))}"
      sum:
        depends_on: [square]
        type: script
        script: |
          echo 'OUTPUT: {{ square.output | map(attribute="value") | sum }}'
"#;

serve_test! {
    async fn concurrent_jobs_all_complete_with_every_step_run_once(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = home.start().await;
        let client = &server;
        let ids = futures_join((1..=12).map(|n| async move {
            let body = json!({"input": {"n": n}}).to_string();
            (n, client.execute("default", "fan", &body).await)
        }))
        .await;
        for (n, id) in ids {
            let job = server
                .wait_job(id, Duration::from_secs(120), |job| job["status"] != "pending"
                    && job["status"] != "running")
                .await;
            assert_eq!(job["status"], "completed", "{job:#}");
            assert_eq!(job["output"], json!({"sum": 36 * n}), "{job:#}");
            for index in 0..8 {
                let instance = step(&job, &format!("square[{index}]"));
                assert_eq!(instance["attempt"], 1, "{instance:#}");
            }
        }
        let stats = server.get("/api/stats").await.json();
        assert_eq!(stats["completed"], 12, "{stats}");
        server.stop().await;
    }
}

/// Runs the futures concurrently on the test's runtime and collects their results in order.
async fn futures_join<F, T>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: Future<Output = T>,
{
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<T>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in pinned.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *slot = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}
