-- Lists the ten most played catalog songs with their artists.
SELECT s.title, a.name AS artist, COUNT(*) AS plays
FROM songplays AS sp
JOIN songs AS s ON s.song_id = sp.song_id
LEFT JOIN artists AS a ON a.artist_id = sp.artist_id
GROUP BY s.title, a.name
ORDER BY plays DESC, s.title
LIMIT 10
