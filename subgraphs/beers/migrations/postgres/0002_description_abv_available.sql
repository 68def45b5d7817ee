-- What a shop page shows beside the name: a description, the alcohol by volume (exact, in hundredths
-- of a percent: 0 to 10000 is 0.00% to 100.00%) and whether the beer can be ordered now. Existing
-- beers keep everything they had: no description or abv yet, and available.
ALTER TABLE beers ADD COLUMN description TEXT;
ALTER TABLE beers ADD COLUMN abv_hundredths BIGINT CHECK (abv_hundredths BETWEEN 0 AND 10000);
ALTER TABLE beers ADD COLUMN available BOOLEAN NOT NULL DEFAULT TRUE;
