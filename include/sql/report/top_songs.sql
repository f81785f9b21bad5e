-- Lists the ten most played catalog songs with their artist's name (plays that match no catalog song are left out).
SELECT s.title, a.name AS artist, COUNT(*) AS plays
FROM songplays AS sp
INNER JOIN songs AS s ON s.song_id = sp.song_id
LEFT JOIN artists AS a ON a.artist_id = s.artist_id
GROUP BY s.song_id, s.title, a.name
ORDER BY plays DESC, s.title ASC
LIMIT 10
