//! The orders subgraph's client of the beers subgraph: does a sku exist, and what does it cost now?

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use taproom_common::money::{Decimal, MAX_PRICE_CENTS};

use crate::error::Error;

/// Asks the beers subgraph's GraphQL endpoint over HTTP. Cheap to clone.
#[derive(Clone)]
pub struct BeersClient {
    http: reqwest::Client,
    url: String,
}

#[derive(Deserialize)]
struct Response {
    data: Option<Data>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Data {
    beer: Option<Beer>,
}

#[derive(Deserialize)]
struct Beer {
    price: String,
}

impl BeersClient {
    /// A client of the GraphQL endpoint at `url`, with a 5 s timeout per request.
    pub fn new(url: impl Into<String>) -> Self {
        BeersClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a plain HTTP client always builds"),
            url: url.into(),
        }
    }

    /// The current price of `sku` in cents, or `None` if the catalog has no such beer.
    pub async fn price_cents(&self, sku: &str) -> Result<Option<i64>, Error> {
        let unavailable = |cause: String| Error::BeersUnavailable(format!("{}: {cause}", self.url));
        let response = self
            .http
            .post(&self.url)
            .json(&json!({
                "query": "query TaproomOrdersBeerPrice($sku: String!) { beer(sku: $sku) { price } }",
                "variables": { "sku": sku },
            }))
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let body: Response = response
            .json()
            .await
            .map_err(|e| unavailable(format!("unreadable answer: {e}")))?;
        if !body.errors.is_empty() {
            return Err(unavailable(format!("errors: {:?}", body.errors)));
        }
        let Some(beer) = body.data.and_then(|d| d.beer) else {
            return Ok(None);
        };
        let cents = Decimal::from_text(beer.price.as_str())
            .to_cents("price", MAX_PRICE_CENTS)
            .map_err(|_| unavailable(format!("unreadable price {:?}", beer.price)))?;
        Ok(Some(cents))
    }
}
