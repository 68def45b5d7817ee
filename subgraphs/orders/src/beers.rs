//! The orders subgraph's client of the beers subgraph: which beer has a sku now and what does it
//! cost, and can the beers an order holds still be ordered?

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use taproom_common::{
    money::{Decimal, MAX_PRICE_CENTS},
    trust::{SubgraphSecret, SECRET_HEADER},
};
use tracing::Instrument;

use crate::error::Error;

/// Asks the beers subgraph's GraphQL endpoint over HTTP. Cheap to clone.
#[derive(Clone)]
pub struct BeersClient {
    http: reqwest::Client,
    url: String,
    /// The shared subgraph secret, sent with every request.
    secret: Option<SubgraphSecret>,
    /// Every request here is a query: one that failed at the connection level is sent once more.
    retries: std::sync::Arc<taproom_common::retry::RetryBudget>,
}

/// A beer as the catalog has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogBeer {
    /// The beers subgraph's id, never reused for another beer.
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    /// Whether it can be ordered now.
    pub available: bool,
}

/// What an order line names its beer by: its id, or (lines from before ids were kept) its sku.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeerRef {
    Id(i64),
    Sku(String),
}

#[derive(Deserialize)]
struct Response<D> {
    data: Option<D>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct BeerData {
    beer: Option<Beer>,
}

#[derive(Deserialize)]
struct Beer {
    id: String,
    name: String,
    price: String,
    available: bool,
}

#[derive(Deserialize)]
struct EntitiesData {
    #[serde(rename = "_entities")]
    entities: Vec<Option<serde_json::Value>>,
}

/// How long one request to the catalog may take, a retry included.
const TIMEOUT: Duration = Duration::from_secs(5);

impl BeersClient {
    /// A client of the GraphQL endpoint at `url`, with a 5 s timeout per request, presenting
    /// `secret` ([`taproom_common::trust`]).
    pub fn new(url: impl Into<String>, secret: Option<SubgraphSecret>) -> Self {
        BeersClient {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .expect("a plain HTTP client always builds"),
            url: url.into(),
            secret,
            retries: std::sync::Arc::default(),
        }
    }

    fn unavailable(&self, cause: impl std::fmt::Display) -> Error {
        Error::BeersUnavailable(format!("{}: {cause}", self.url))
    }

    /// Sends one GraphQL request; any transport failure or GraphQL error is `BeersUnavailable`.
    async fn post<D: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<Option<D>, Error> {
        let span = taproom_common::telemetry::client_span("POST /graphql", "beers");
        self.post_unspanned(query, variables).instrument(span).await
    }

    async fn post_unspanned<D: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<Option<D>, Error> {
        let mut request = self.http.post(&self.url);
        for (header, value) in taproom_common::telemetry::outgoing() {
            request = request.header(header, value);
        }
        if let Some(secret) = &self.secret {
            request = request.header(SECRET_HEADER, secret.header_value());
        }
        let request = request.json(&json!({ "query": query, "variables": variables }));
        let sent = taproom_common::retry::send_idempotent(request, &self.retries, TIMEOUT).await;
        if let Some((retried, reason)) = &sent.retry {
            tracing::warn!(url = %self.url, %reason, ?retried, "a catalog lookup failed at the connection level");
        }
        let response = sent
            .answer
            .map_err(|e| self.unavailable(taproom_common::retry::causes(&e)))?;
        if !response.status().is_success() {
            return Err(self.unavailable(format!("HTTP {}", response.status())));
        }
        let body: Response<D> = response
            .json()
            .await
            .map_err(|e| self.unavailable(format!("unreadable answer: {e}")))?;
        if !body.errors.is_empty() {
            return Err(self.unavailable(format!("errors: {:?}", body.errors)));
        }
        Ok(body.data)
    }

    /// The beer that has `sku` now, or `None` if the catalog has no such beer.
    pub async fn beer(&self, sku: &str) -> Result<Option<CatalogBeer>, Error> {
        let data: Option<BeerData> = self
            .post(
                "query TaproomOrdersBeer($sku: String!) { beer(sku: $sku) { id name price available } }",
                json!({ "sku": sku }),
            )
            .await?;
        let Some(beer) = data.and_then(|d| d.beer) else {
            return Ok(None);
        };
        let price_cents = Decimal::from_text(beer.price.as_str())
            .to_cents("price", MAX_PRICE_CENTS)
            .map_err(|_| self.unavailable(format!("unreadable price {:?}", beer.price)))?;
        let id = beer
            .id
            .parse()
            .map_err(|_| self.unavailable(format!("unreadable beer id {:?}", beer.id)))?;
        Ok(Some(CatalogBeer {
            id,
            name: beer.name,
            price_cents,
            available: beer.available,
        }))
    }

    /// For each reference, whether the catalog still has that beer and it can be ordered now; one
    /// request for all of them.
    pub async fn still_orderable(&self, refs: &[BeerRef]) -> Result<Vec<bool>, Error> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let representations: Vec<_> = refs
            .iter()
            .map(|r| match r {
                BeerRef::Id(id) => json!({ "__typename": "Beer", "id": id.to_string() }),
                BeerRef::Sku(sku) => json!({ "__typename": "Beer", "sku": sku }),
            })
            .collect();
        let data: Option<EntitiesData> = self
            .post(
                "query TaproomOrdersBeersOrderable($r: [_Any!]!) { _entities(representations: $r) { ... on Beer { available } } }",
                json!({ "r": representations }),
            )
            .await?;
        let entities = data.map(|d| d.entities).unwrap_or_default();
        if entities.len() != refs.len() {
            return Err(self.unavailable(format!(
                "{} entities for {} representations",
                entities.len(),
                refs.len()
            )));
        }
        Ok(entities
            .iter()
            .map(|e| {
                e.as_ref()
                    .is_some_and(|v| v["available"] == serde_json::Value::Bool(true))
            })
            .collect())
    }
}
