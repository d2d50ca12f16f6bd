"""Small local defaults for the Themis tools that would otherwise need the network."""

from __future__ import annotations

DOCUMENTS = [
    "Water boils at 100 degrees Celsius at sea level.",
    "The speed of light in vacuum is 299,792,458 metres per second.",
    "Mount Everest is 8,849 metres high and lies on the border of Nepal and China.",
    "The Pacific Ocean is the largest and deepest ocean on Earth.",
    "Python is a programming language created by Guido van Rossum, first released in 1991.",
    "The human heart has four chambers: two atria and two ventricles.",
    "A leap year has 366 days; February then has 29 days.",
    "The chemical symbol of gold is Au, from the Latin word aurum.",
]

WIKI = [
    "Paris is the capital and largest city of France, on the river Seine.",
    "Berlin is the capital of Germany and its most populous city.",
    "Tokyo is the capital of Japan and one of the most populous cities in the world.",
    "Marie Curie was a physicist and chemist who won Nobel Prizes in physics and chemistry.",
    "Albert Einstein developed the theory of relativity; he was born in Ulm in 1879.",
    "The Amazon is the largest rainforest in the world, mostly in Brazil.",
    "The Great Wall of China is a series of fortifications built over many centuries.",
    "Ada Lovelace wrote what is seen as the first computer program, for Babbage's engine.",
]

DICTIONARY = {
    "fr": {
        "hello": "bonjour",
        "good": "bon",
        "morning": "matin",
        "cat": "chat",
        "dog": "chien",
        "house": "maison",
        "water": "eau",
        "thank": "merci",
        "you": "vous",
        "red": "rouge",
        "book": "livre",
        "the": "le",
    },
    "de": {
        "hello": "hallo",
        "good": "gut",
        "morning": "morgen",
        "cat": "katze",
        "dog": "hund",
        "house": "haus",
        "water": "wasser",
        "thank": "danke",
        "you": "sie",
        "red": "rot",
        "book": "buch",
        "the": "der",
    },
    "es": {
        "hello": "hola",
        "good": "bueno",
        "morning": "mañana",
        "cat": "gato",
        "dog": "perro",
        "house": "casa",
        "water": "agua",
        "thank": "gracias",
        "you": "usted",
        "red": "rojo",
        "book": "libro",
        "the": "el",
    },
}

WEATHER = {
    "paris": "Cloudy, 14 °C, light wind",
    "london": "Rain, 11 °C, strong wind",
    "tokyo": "Sunny, 22 °C, calm",
    "new york": "Partly cloudy, 18 °C, light wind",
    "berlin": "Overcast, 12 °C, calm",
}
