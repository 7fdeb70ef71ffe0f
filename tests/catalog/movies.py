"""A small hand-picked catalog with real TMDB overviews, for search tests."""

from __future__ import annotations

from catalog.models import Movie
from catalog.services import movie_search_text_refresh
from tests.factories import MovieFactory

CLASSICS = [
    (260, "Star Wars: Episode IV - A New Hope", 1977, ["Action", "Adventure", "Sci-Fi"], ["space", "droids", "jedi"],
     "Princess Leia is captured and held hostage by the evil Imperial forces in their effort to take over the "
     "galactic Empire. Venturesome Luke Skywalker and dashing captain Han Solo team together with the loveable robot "
     "duo R2-D2 and C-3PO to rescue the beautiful princess and restore peace and justice in the Empire."),
    (1, "Toy Story", 1995, ["Adventure", "Animation", "Children", "Comedy"], ["pixar", "toys"],
     "Led by Woody, Andy's toys live happily in his room until Andy's birthday brings Buzz Lightyear onto the scene."),
    (1214, "Alien", 1979, ["Horror", "Sci-Fi"], ["space", "creature"],
     "During its return to the earth, commercial spaceship Nostromo intercepts a distress signal from a distant "
     "planet. When a three-member team of the crew discovers a chamber containing thousands of eggs, an alien "
     "creature attacks."),
    (1721, "Titanic", 1997, ["Drama", "Romance"], ["ship", "love"],
     "101-year-old Rose DeWitt Bukater tells the story of her life aboard the Titanic, 84 years later. A young Rose "
     "boards the ship with her mother and fiancé. Meanwhile, Jack Dawson and Fabrizio De Rossi win third-class "
     "tickets aboard the ship. Rose tells the whole story from Titanic's departure through to its death."),
    (6, "Heat", 1995, ["Action", "Crime", "Thriller"], ["heist", "los angeles"],
     "Obsessive master thief Neil McCauley leads a top-notch crew on various daring heists throughout Los Angeles "
     "while determined detective Vincent Hanna pursues him without rest."),
    (6377, "Finding Nemo", 2003, ["Adventure", "Animation", "Children", "Comedy"], ["ocean", "fish"],
     "Nemo, an adventurous young clownfish, is unexpectedly taken from his Great Barrier Reef home to a dentist's "
     "office aquarium. It's up to his worrisome father Marlin and a friendly but forgetful fish Dory to bring Nemo "
     "home."),
    (2324, "Life Is Beautiful", 1997, ["Comedy", "Drama", "Romance", "War"], ["holocaust"],
     "A touching story of an Italian book seller of Jewish ancestry who lives in his own little fairy tale. His "
     "creative and happy life would come to an abrupt halt when his entire family is deported to a concentration "
     "camp during World War II."),
    (356, "Forrest Gump", 1994, ["Comedy", "Drama", "Romance", "War"], ["vietnam war"],
     "A man with a low IQ has accomplished great things in his life and been present during significant historic "
     "events - in each case, far exceeding what anyone imagined he could do."),
]


def create_classics() -> list[Movie]:
    """Create the movies above (with genres, keywords and search text) and return them."""
    movies = []
    for index, (movie_id, title, year, genres, keywords, overview) in enumerate(CLASSICS):
        movies.append(MovieFactory(id=movie_id, title=title, year=year, genres=genres, keywords=keywords,
                                   overview=overview, rating_count=100 - index, rating_mean=4.0 - index / 10,
                                   poster_path="/poster.jpg" if index % 2 == 0 else ""))
    movie_search_text_refresh()
    return movies
