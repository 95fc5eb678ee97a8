-- Load ids of evaluate batches already committed, by content hash (parameters: $model, $hashes).
SELECT l.load_id, l.content_hash
FROM loads l
JOIN models m USING (model_id)
WHERE m.name = $model AND l.kind = 'evaluate' AND list_contains($hashes, l.content_hash);
