"""A seeded synthetic French corpus with planted structure.

The course's word-embedding chapters need text in which *something* can be learned, and the
study's texts are private. This generator writes simple French sentences from templates whose slots
are filled by words that share a hidden structure:

* family members come in **gender pairs** (père/mère, frère/sœur ...) and belong to a
  **generation** (grand-parents, parents, siblings, children). Gender shows up in the context only
  through French agreement (``mon``/``ma``, ``il``/``elle``, ``content``/``contente``), generation
  through what people do (``retraite``, ``travail``, ``lycée``, ``crèche``);
* feelings are positive or negative adjectives, agreed in gender;
* medical sentences tie each **organ** to its **specialist** (poumon/pneumologue ...).

Because the structure is planted, the analogies it implies (``père : mère :: frère : sœur``,
``poumon : pneumologue :: cœur : cardiologue``) are known in advance and can be used to *evaluate*
embeddings trained on the corpus. The text is synthetic and says so; word frequencies are skewed
(Zipf-like weights on every slot) so that frequent-word subsampling has work to do.

Around the planted structure, *everyday* sentences (first names, hobbies, places, school subjects,
food, pets, transport, time expressions) and richer medical sentences (symptoms, drugs, services,
sizes, durations) give the default one-million-token corpus a vocabulary of about 1,400 word
types with a Zipf-like frequency profile. None of them carries a gender signal other than
agreement (``léa est contente``), and the generation-specific words (ages, activities) only ever
appear as generation contexts.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

__all__ = ["SyntheticCorpus", "synthetic_corpus", "FAMILY", "FEELINGS", "ORGANS"]

# (masculine, feminine, generation): generation 2 = grand-parents, 1 = parents' generation,
# 0 = the teenager's own, -1 = children.
FAMILY: list[tuple[str, str, int]] = [
    ("grand-père", "grand-mère", 2),
    ("papi", "mamie", 2),
    ("père", "mère", 1),
    ("oncle", "tante", 1),
    ("parrain", "marraine", 1),
    ("beau-père", "belle-mère", 1),
    ("frère", "sœur", 0),
    ("cousin", "cousine", 0),
    ("demi-frère", "demi-sœur", 0),
    ("fils", "fille", -1),
    ("neveu", "nièce", -1),
]

# What each generation does: the only context that separates generations.
GENERATION_CONTEXT: dict[int, list[str]] = {
    2: ["est à la retraite", "jardine tous les jours", "raconte ses souvenirs de jeunesse",
        "habite à la campagne", "tricote près du feu", "joue à la pétanque", "fait des mots croisés",
        "regarde les informations", "prend sa tension", "garde ses petits-enfants",
        "lit le journal", "se promène avec sa canne", "joue au bridge", "cultive des tomates",
        "visite le village", "va à la messe", "fait une cure thermale", "collectionne les timbres"],
    1: ["part au travail tôt", "rentre tard du bureau", "paie les factures",
        "conduit la voiture", "prépare le dîner après le travail", "rembourse le crédit",
        "fait les courses", "répond aux mails", "organise une réunion", "cherche un emploi",
        "remplit la déclaration", "emmène les enfants", "négocie une augmentation",
        "travaille sur un dossier", "signe les contrats", "appelle son patron"],
    0: ["révise pour le brevet", "va au lycée", "joue aux jeux vidéo",
        "sort avec ses amis", "fait ses devoirs de maths", "passe le baccalauréat",
        "discute sur son portable", "regarde des séries", "prépare un exposé", "va au collège",
        "écoute du rap", "joue sur sa console", "rêve de vacances", "publie des photos",
        "attend les résultats", "apprend le code", "choisit son orientation"],
    -1: ["va à la crèche", "apprend à marcher", "pleure la nuit", "joue avec ses jouets",
         "fait la sieste", "boit son biberon", "regarde des dessins animés", "joue dans le bac",
         "empile des cubes", "dessine avec des feutres", "apprend les couleurs", "perd une dent",
         "chante des comptines", "va à la maternelle", "fait du tricycle"],
}

# Ages are generation contexts too ("mon grand-père a 78 ans"): (lowest, highest) per generation.
GENERATION_AGES: dict[int, tuple[int, int]] = {2: (62, 96), 1: (31, 58), 0: (11, 19), -1: (1, 9)}

# (masculine, feminine, valence)
FEELINGS: list[tuple[str, str, str]] = [
    ("content", "contente", "+"), ("heureux", "heureuse", "+"), ("fier", "fière", "+"),
    ("gentil", "gentille", "+"), ("drôle", "drôle", "+"), ("généreux", "généreuse", "+"),
    ("triste", "triste", "-"), ("énervé", "énervée", "-"), ("fâché", "fâchée", "-"),
    ("jaloux", "jalouse", "-"), ("méchant", "méchante", "-"), ("inquiet", "inquiète", "-"),
    ("fatigué", "fatiguée", "0"), ("occupé", "occupée", "0"),
    ("joyeux", "joyeuse", "+"), ("ravi", "ravie", "+"), ("calme", "calme", "+"),
    ("courageux", "courageuse", "+"), ("patient", "patiente", "+"), ("rassuré", "rassurée", "+"),
    ("soulagé", "soulagée", "+"), ("reconnaissant", "reconnaissante", "+"), ("détendu", "détendue", "+"),
    ("motivé", "motivée", "+"), ("amoureux", "amoureuse", "+"), ("curieux", "curieuse", "+"),
    ("déçu", "déçue", "-"), ("stressé", "stressée", "-"), ("furieux", "furieuse", "-"),
    ("anxieux", "anxieuse", "-"), ("vexé", "vexée", "-"), ("blessé", "blessée", "-"),
    ("déprimé", "déprimée", "-"), ("honteux", "honteuse", "-"), ("têtu", "têtue", "-"),
    ("distant", "distante", "-"), ("malheureux", "malheureuse", "-"), ("seul", "seule", "-"),
    ("surpris", "surprise", "0"), ("sérieux", "sérieuse", "0"), ("timide", "timide", "0"),
    ("pressé", "pressée", "0"), ("absent", "absente", "0"), ("pensif", "pensive", "0"),
]

RELATIONS_POS = ["aime", "aide", "écoute", "protège", "embrasse", "console", "admire",
                 "adore", "soutient", "encourage", "félicite", "rassure", "comprend", "remercie",
                 "respecte", "défend", "taquine", "appelle"]
RELATIONS_NEG = ["déteste", "critique", "ignore", "engueule", "évite", "jalouse",
                 "méprise", "agace", "énerve", "insulte", "trahit", "rejette", "dispute", "vexe"]

# (organ, article, specialist)
ORGANS: list[tuple[str, str, str]] = [
    ("poumon", "le", "pneumologue"), ("cœur", "le", "cardiologue"), ("peau", "la", "dermatologue"),
    ("sein", "le", "sénologue"), ("rein", "le", "néphrologue"), ("foie", "le", "hépatologue"),
    ("côlon", "le", "gastro-entérologue"), ("prostate", "la", "urologue"),
    ("cerveau", "le", "neurologue"), ("sang", "le", "hématologue"),
]
TREATMENTS = ["chimiothérapie", "radiothérapie", "chirurgie", "immunothérapie", "hormonothérapie",
              "curiethérapie", "thérapie ciblée", "greffe", "surveillance active", "rééducation"]
EXAMS = ["scanner", "irm", "biopsie", "échographie", "radiographie", "tep-scan", "bilan sanguin",
         "prélèvement", "endoscopie", "scintigraphie", "mammographie", "coloscopie", "fibroscopie"]
FINDINGS = ["un carcinome", "une tumeur", "une lésion suspecte", "des métastases", "un nodule",
            "un adénocarcinome", "un kyste", "une inflammation", "un épanchement", "une masse",
            "une fibrose", "un œdème", "une sténose", "un polype", "une calcification",
            "un lymphome", "un mélanome", "une infection", "une hémorragie", "un anévrisme"]
SYMPTOMS = ["douleurs", "fièvre", "toux", "fatigue", "nausées", "vomissements", "vertiges",
            "essoufflement", "maux de tête", "palpitations", "démangeaisons", "insomnies",
            "frissons", "sueurs nocturnes", "crampes", "saignements", "diarrhées", "constipation",
            "perte de poids", "manque de sommeil", "troubles de la vision", "fourmillements",
            "brûlures", "courbatures", "angoisses", "spasmes", "ganglions", "rougeurs"]
DRUGS = ["paracétamol", "ibuprofène", "morphine", "tramadol", "cisplatine", "carboplatine",
         "docétaxel", "paclitaxel", "tamoxifène", "létrozole", "anastrozole", "cortisone",
         "amoxicilline", "héparine", "insuline", "metformine", "oméprazole", "furosémide",
         "méthotrexate", "trastuzumab", "pembrolizumab", "nivolumab", "bévacizumab",
         "capécitabine", "oxaliplatine", "gemcitabine", "doxorubicine", "vincristine",
         "lévothyroxine", "aspirine", "codéine", "kétamine", "ondansétron", "lorazépam"]
SERVICES = ["oncologie", "cardiologie", "pneumologie", "neurologie", "urologie", "dermatologie",
            "radiologie", "chirurgie digestive", "réanimation", "pédiatrie", "gériatrie",
            "hématologie", "gynécologie", "néphrologie", "hépatologie", "soins palliatifs",
            "médecine interne", "hôpital de jour", "consultation externe", "imagerie"]
DURATIONS = ["deux jours", "trois jours", "une semaine", "deux semaines", "trois semaines",
             "un mois", "deux mois", "trois mois", "six mois", "un an", "plusieurs années",
             "hier", "ce matin", "la semaine dernière", "quelques heures", "longtemps"]
STATES = ["stable", "rassurant", "inquiétant", "favorable", "défavorable", "normal",
          "anormal", "bénin", "malin", "progressif", "régressif", "douteux", "préoccupant"]

# Everyday life: words that give the corpus a realistic vocabulary size. None depends on gender
# except through agreement, and none is tied to a generation.
NAMES_M = ["lucas", "hugo", "louis", "gabriel", "arthur", "jules", "adam", "raphaël", "léo",
           "nathan", "ethan", "tom", "noah", "paul", "sacha", "maël", "nolan", "enzo", "théo",
           "mathis", "timéo", "axel", "victor", "martin", "baptiste", "mathéo", "clément",
           "antoine", "maxime", "alexandre", "thomas", "quentin", "romain", "nicolas", "julien",
           "kevin", "yanis", "rayan", "mohamed", "karim", "samir", "bilal", "ismaël", "malo",
           "gaspard", "côme", "augustin", "basile", "marius", "félix", "valentin", "damien",
           "benjamin", "florian", "lilian", "sébastien", "olivier", "vincent", "franck", "éric",
           "pierre", "jacques", "bernard", "michel", "alain", "philippe", "patrick", "marcel",
           "rené", "gérard", "dylan", "lenny", "aaron", "elio", "isaac", "liam", "ayoub", "kylian",
           "joachim", "tristan", "adrien", "bastien", "cédric", "david", "émile", "fabien",
           "grégoire", "hector", "ilyes", "jérémy", "kilian", "loïc", "mehdi", "noé", "oscar",
           "pascal", "rémi", "simon", "thibault", "ulysse", "vianney", "william", "xavier",
           "yann", "zacharie", "achille", "blaise", "charles", "denis", "étienne", "fernand",
           "georges", "henri", "jean", "lucien", "maurice", "norbert", "raymond", "roger",
           "serge", "thierry", "yves", "amine", "hamza", "idriss", "moussa", "ousmane", "sékou",
           "lorenzo", "matteo", "diego", "pablo", "hugo-andré", "jean-pierre", "jean-marc",
           "pierre-louis", "marc-antoine", "jean-baptiste"]
NAMES_F = ["emma", "jade", "louise", "alice", "chloé", "lina", "léa", "rose", "anna", "mia",
           "inès", "ambre", "julia", "mila", "léna", "manon", "juliette", "lou", "zoé", "camille",
           "sarah", "eva", "agathe", "jeanne", "nina", "lola", "clara", "romane", "margaux",
           "charlotte", "pauline", "marie", "laura", "lucie", "mathilde", "océane", "marine",
           "élise", "justine", "célia", "yasmine", "sofia", "nour", "amira", "leïla", "maëlys",
           "capucine", "victoire", "apolline", "éloïse", "lisa", "noémie", "morgane", "audrey",
           "nathalie", "sandrine", "isabelle", "valérie", "céline", "sophie", "catherine",
           "françoise", "monique", "nicole", "sylvie", "christine", "brigitte", "martine",
           "ginette", "josiane", "kenza", "maya", "iris", "alix", "thaïs", "salomé", "garance",
           "héloïse", "clémence", "aurore", "anaïs", "bérénice", "constance", "diane", "elsa",
           "fanny", "gaëlle", "hélène", "ilona", "jasmine", "katia", "lætitia", "lisa-marie",
           "mélanie", "nadia", "ophélie", "perrine", "rachel", "solène", "tiphaine", "ursule",
           "vanessa", "wendy", "yaëlle", "zélie", "adèle", "blanche", "colette", "denise",
           "estelle", "flavie", "gisèle", "huguette", "irène", "joséphine", "lucienne", "madeleine",
           "odette", "paulette", "raymonde", "simone", "thérèse", "yvette", "aïcha", "fatima",
           "samira", "djamila", "awa", "aminata", "mariam", "chiara", "giulia", "ana", "carmen"]
HOBBIES = ["fait du football", "joue au tennis", "fait de la danse", "fait du judo",
           "joue du piano", "joue de la guitare", "fait de la natation", "fait du vélo",
           "fait de la gym", "fait du karaté", "joue au basket", "joue au handball",
           "fait du théâtre", "fait de la peinture", "joue aux échecs", "fait du skate",
           "fait de la boxe", "fait du rugby", "fait de la couture", "fait du ski",
           "joue du violon", "joue de la batterie", "fait du chant", "fait de la photo",
           "fait de la poterie", "joue au volley", "fait de la randonnée", "fait du surf",
           "fait de la grimpe", "fait de la voile", "joue de la flûte", "fait du yoga",
           "fait de la cuisine", "fait du roller", "joue au ping-pong", "monte à cheval",
           "fait du tir sportif", "fait du hockey", "joue du saxophone", "fait de la magie",
           "fait du jardinage", "joue au badminton", "fait de la lecture", "fait du dessin",
           "fait de la sculpture", "fait du kayak", "joue de la trompette", "fait du cirque"]
PLACES = ["à la piscine", "au parc", "au cinéma", "à la bibliothèque", "au stade", "au marché",
          "à la plage", "à la montagne", "au musée", "au gymnase", "à la boulangerie",
          "au supermarché", "à la pharmacie", "au centre commercial", "à la mairie", "au théâtre",
          "au concert", "à la fête foraine", "au restaurant", "à la patinoire", "au zoo",
          "à la médiathèque", "au bowling", "à la mer", "au lac", "à la campagne", "au port",
          "à la gare", "au café", "à la poste", "au skatepark", "au conservatoire",
          "à la salle de sport", "au club", "au jardin", "à la ferme", "au château"]
CITIES = ["paris", "lyon", "marseille", "toulouse", "nice", "nantes", "strasbourg", "montpellier",
          "bordeaux", "lille", "rennes", "reims", "toulon", "grenoble", "dijon", "angers", "nîmes",
          "brest", "limoges", "tours", "amiens", "metz", "perpignan", "besançon", "orléans",
          "rouen", "mulhouse", "caen", "nancy", "avignon", "poitiers", "pau", "calais", "ajaccio",
          "bastia", "annecy", "chambéry", "colmar", "quimper", "lorient", "vannes", "saint-malo",
          "biarritz", "bayonne", "cannes", "antibes", "valence", "troyes", "chartres", "bourges",
          "nevers", "auxerre", "laval", "cherbourg", "dunkerque", "arras", "lens", "saint-étienne",
          "clermont-ferrand", "aix-en-provence", "montauban", "albi", "rodez", "carcassonne",
          "narbonne", "béziers", "sète", "arles", "gap", "briançon", "lourdes", "tarbes",
          "angoulême", "niort", "cognac", "périgueux", "bergerac", "agen", "cahors", "vichy",
          "genève", "bruxelles", "lausanne", "montréal", "québec", "londres", "madrid", "rome",
          "berlin", "lisbonne", "barcelone", "dakar", "alger", "tunis", "casablanca"]
SUBJECTS = ["maths", "français", "anglais", "espagnol", "allemand", "italien", "histoire",
            "géographie", "physique", "chimie", "biologie", "svt", "philosophie", "musique",
            "dessin", "sport", "technologie", "latin", "grec", "économie", "informatique",
            "arts plastiques", "littérature", "sociologie", "chinois", "arabe", "géométrie",
            "algèbre", "grammaire", "orthographe"]
FOODS = ["une pizza", "des pâtes", "du riz", "une salade", "une soupe", "du fromage", "du pain",
         "un croissant", "une baguette", "des crêpes", "un gâteau", "du chocolat", "une tarte",
         "des pommes", "des poires", "des bananes", "des fraises", "des cerises", "des oranges",
         "du raisin", "des carottes", "des tomates", "des haricots", "des lentilles", "du poulet",
         "du poisson", "un steak", "du jambon", "des œufs", "un yaourt", "une quiche",
         "du couscous", "un tajine", "une ratatouille", "un gratin", "une omelette",
         "un sandwich", "un burger", "des frites", "des sushis", "des lasagnes", "une raclette",
         "une fondue", "un croque-monsieur", "un hachis-parmentier", "une blanquette",
         "un cassoulet", "une choucroute", "des madeleines", "une brioche", "des céréales",
         "une compote", "une glace", "des biscuits", "des bonbons", "des muffins", "une purée",
         "des épinards", "des courgettes", "des aubergines", "des brocolis", "des champignons",
         "du saumon", "du thon", "des crevettes", "des sardines", "un melon", "une pastèque",
         "des abricots", "des pêches", "des kiwis", "une mangue", "un ananas", "des noix",
         "des amandes", "des clémentines", "un kebab", "des nems", "un tiramisu", "des gaufres",
         "un flan", "des macarons", "une paëlla", "des moules", "une galette", "des nouilles"]
PETS = ["un chien", "un chat", "un lapin", "un hamster", "un cobaye", "un poisson rouge",
        "une tortue", "un perroquet", "un furet", "une souris", "un cheval", "un poney",
        "une perruche", "un canari", "un serpent", "un lézard", "une chèvre", "un âne"]
TRANSPORT = ["en bus", "à vélo", "en voiture", "en train", "à pied", "en métro", "en tram",
             "en avion", "en bateau", "à moto", "en trottinette", "en taxi", "en covoiturage",
             "en scooter", "en car"]
TIMES = ["le lundi", "le mardi", "le mercredi", "le jeudi", "le vendredi", "le samedi",
         "le dimanche", "ce matin", "ce soir", "cet après-midi", "hier", "demain",
         "aujourd'hui", "la semaine prochaine", "le week-end", "pendant les vacances", "à noël",
         "à pâques", "en janvier", "en février", "en mars", "en avril", "en mai", "en juin",
         "en juillet", "en août", "en septembre", "en octobre", "en novembre", "en décembre",
         "tous les jours", "chaque semaine", "parfois", "souvent", "rarement", "le soir",
         "le matin", "à midi", "la nuit", "après les cours", "avant le dîner", "en été",
         "en hiver", "au printemps", "en automne"]
COUNTRIES = ["en espagne", "en italie", "en allemagne", "en belgique", "en suisse", "en angleterre",
             "en irlande", "en écosse", "en grèce", "en croatie", "en pologne", "en suède",
             "en norvège", "en finlande", "en islande", "en autriche", "en hongrie", "en roumanie",
             "en turquie", "en égypte", "en tunisie", "en algérie", "en inde", "en chine",
             "en corée", "en australie", "en argentine", "en colombie", "en bretagne",
             "en normandie", "en corse", "en alsace", "en provence", "au portugal", "au maroc",
             "au sénégal", "au japon", "au canada", "au mexique", "au brésil", "au pérou",
             "au vietnam", "au danemark", "au luxembourg", "aux états-unis", "aux pays-bas",
             "aux antilles", "à la réunion", "en guadeloupe", "en martinique"]
CLOTHES = ["un pull", "une veste", "un manteau", "une robe", "un jean", "une jupe", "un pantalon",
           "une chemise", "un tee-shirt", "un sweat", "une casquette", "un bonnet", "une écharpe",
           "un short", "un blouson", "une doudoune", "un survêtement", "une cravate",
           "un chapeau", "une salopette", "un gilet", "une parka", "un imperméable", "un maillot",
           "une polaire", "un costume", "une tunique", "un kimono", "une cape", "un jogging"]
# (masculine, feminine) agreement with the garment
COLORS = [("bleu", "bleue"), ("vert", "verte"), ("noir", "noire"), ("gris", "grise"),
          ("blanc", "blanche"), ("rouge", "rouge"), ("jaune", "jaune"), ("rose", "rose"),
          ("violet", "violette"), ("orange", "orange"), ("marron", "marron"), ("beige", "beige"),
          ("doré", "dorée"), ("argenté", "argentée"), ("kaki", "kaki"), ("turquoise", "turquoise"),
          ("bordeaux", "bordeaux"), ("fluo", "fluo"), ("rayé", "rayée"), ("neuf", "neuve")]
ACTIVITIES = ["regarde un film", "lit un roman", "écoute un podcast", "range sa chambre",
              "promène le chien", "fait la vaisselle", "sort les poubelles", "prend une douche",
              "répète son spectacle", "écrit une lettre", "construit une cabane", "lit une bande dessinée",
              "regarde un match", "joue aux cartes", "fait un puzzle", "apprend une chanson",
              "prépare un gâteau", "tond la pelouse", "lave la voiture", "répare son vélo",
              "envoie un message", "téléphone à un ami", "fait une sieste", "monte un meuble",
              "visite une exposition", "plante des fleurs", "décore le sapin", "emballe des cadeaux",
              "prépare sa valise", "cherche ses clés", "fait une balade", "nourrit les poules",
              "arrose les plantes", "fabrique un masque", "compose une chanson", "tricote une écharpe"]
WEATHER = ["il pleut", "il neige", "il fait beau", "il fait chaud", "il fait froid",
           "il y a du vent", "il y a du brouillard", "il y a un orage", "le ciel est gris",
           "le soleil brille", "il gèle", "il grêle"]


@dataclass
class SyntheticCorpus:
    """Tokenised sentences plus the structure that was planted in them.

    Attributes:
        sentences: one list of lower-case word tokens per sentence (``"."`` included).
        analogies: ``(a, b, c, d)`` quadruples meaning *a is to b as c is to d*, by section name
            (``"gender"``, ``"generation"``, ``"specialist"``), as in gensim's questions-words format.
        groups: word lists by category (``"masculine"``, ``"feminine"``, ``"organ"`` ...) for plots.
        seed: the seed that generated it.
    """

    sentences: list[list[str]]
    analogies: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    seed: int = 0

    @property
    def n_tokens(self) -> int:
        return sum(len(s) for s in self.sentences)

    def text(self) -> str:
        """The corpus as plain text, one sentence per line."""
        return "\n".join(" ".join(s) for s in self.sentences)

    def vocabulary(self) -> list[str]:
        """Distinct words, sorted."""
        return sorted({w for s in self.sentences for w in s})

    def analogy_file(self) -> str:
        """All planted analogies in gensim's ``questions-words.txt`` format (``: section`` headers)."""
        lines = []
        for section, quads in self.analogies.items():
            lines.append(f": {section}")
            lines.extend(" ".join(q) for q in quads)
        return "\n".join(lines) + "\n"

    def __len__(self) -> int:
        return len(self.sentences)

    def __repr__(self) -> str:
        return (f"SyntheticCorpus({len(self.sentences):,} sentences, {self.n_tokens:,} tokens, "
                f"{len(self.vocabulary()):,} word types, seed={self.seed})")


def _zipf(n: int, s: float = 0.8) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def _planted_analogies() -> dict[str, list[tuple[str, str, str, str]]]:
    gender = [(m1, f1, m2, f2) for (m1, f1, _), (m2, f2, _) in permutations(FAMILY, 2)]
    # generation: one step up the family tree, same gender (frère : père :: sœur : mère)
    steps = [
        [("frère", "père"), ("sœur", "mère"), ("cousin", "oncle"), ("cousine", "tante")],
        [("père", "grand-père"), ("mère", "grand-mère"), ("oncle", "papi"), ("tante", "mamie")],
    ]
    generation = [(a, b, c, d) for pairs in steps for (a, b), (c, d) in permutations(pairs, 2)]
    specialist = [(o1, s1, o2, s2) for (o1, _, s1), (o2, _, s2) in permutations(ORGANS, 2)]
    return {"gender": gender, "generation": generation, "specialist": specialist}


def _groups() -> dict[str, list[str]]:
    """Word lists by category (single-word entries only, so every word is a corpus token)."""
    def words(items):
        return [w for w in items if " " not in w]

    return {
        "masculine": [m for m, _, _ in FAMILY],
        "feminine": [f for _, f, _ in FAMILY],
        "feeling+": sorted({w for m, f, v in FEELINGS if v == "+" for w in (m, f)}),
        "feeling-": sorted({w for m, f, v in FEELINGS if v == "-" for w in (m, f)}),
        "organ": [o for o, _, _ in ORGANS],
        "specialist": [s for _, _, s in ORGANS],
        "treatment": words(TREATMENTS),
        "drug": list(DRUGS),
        "symptom": words(SYMPTOMS),
        "name_m": list(NAMES_M),
        "name_f": list(NAMES_F),
        "city": list(CITIES),
        "subject": words(SUBJECTS),
        "food": [f.split()[-1] for f in FOODS],
        "hobby": [h.split()[-1] for h in HOBBIES],
        "country": [c.split()[-1] for c in COUNTRIES],
        "clothes": [c.split()[-1] for c in CLOTHES],
    }


class _Choice:
    """A list with Zipf-like weights, sampled by inverse CDF (fast: one ``bisect`` per draw)."""

    def __init__(self, items, s: float = 1.0, rng: np.random.Generator | None = None):
        self.items = list(items)
        order = np.arange(len(self.items))
        if rng is not None:  # which item is frequent is itself seeded, not the list order
            order = rng.permutation(len(self.items))
        weights = np.empty(len(self.items))
        weights[order] = _zipf(len(self.items), s)
        self.cum = np.cumsum(weights).tolist()
        self.cum[-1] = 1.0 + 1e-12


class _Generator:
    """Fills sentence templates; every choice is drawn from one seeded NumPy generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self._u = iter(())  # uniform numbers, drawn from rng in blocks
        # The planted structure keeps its fixed frequency order (first = most frequent).
        self.members = _Choice(FAMILY, 0.5)
        self.feelings = _Choice(FEELINGS, 0.6)
        self.organs = _Choice(ORGANS, 0.6)
        self.generation = {g: _Choice(ctx, 0.8) for g, ctx in GENERATION_CONTEXT.items()}
        self.relations = _Choice(RELATIONS_POS + RELATIONS_NEG, 0.7)
        self.relations_pos = _Choice(RELATIONS_POS, 0.7)
        self.relations_neg = _Choice(RELATIONS_NEG, 0.7)
        # Everyday and clinical words: Zipf weights in a seeded order.
        lists = {"names_m": NAMES_M, "names_f": NAMES_F, "hobbies": HOBBIES, "places": PLACES,
                 "cities": CITIES, "subjects": SUBJECTS, "foods": FOODS, "pets": PETS,
                 "transport": TRANSPORT, "times": TIMES, "weather": WEATHER, "treatments": TREATMENTS,
                 "exams": EXAMS, "findings": FINDINGS, "symptoms": SYMPTOMS, "drugs": DRUGS,
                 "services": SERVICES, "durations": DURATIONS, "states": STATES,
                 "countries": COUNTRIES, "clothes": CLOTHES, "colors": COLORS, "activities": ACTIVITIES}
        for name, items in lists.items():
            setattr(self, name, _Choice(items, 0.9, rng))

    def random(self) -> float:
        try:
            return next(self._u)
        except StopIteration:
            self._u = iter(self.rng.random(4096).tolist())
            return next(self._u)

    def pick(self, choice: _Choice):
        return choice.items[bisect_right(choice.cum, self.random())]

    def integer(self, low: int, high: int) -> int:
        """Uniform integer in [low, high]."""
        return low + int(self.random() * (high - low + 1))

    # ---------------------------------------------------------------- people
    def member(self) -> tuple[str, str, str, int]:
        """(word, possessive, pronoun, generation) with agreement."""
        m, f, gen = self.pick(self.members)
        if self.random() < 0.5:
            return m, "mon", "il", gen
        return f, "ma", "elle", gen

    def person(self) -> tuple[str, str, str]:
        """(first name, pronoun, agreement suffix '' or 'e')."""
        if self.random() < 0.5:
            return self.pick(self.names_m), "il", ""
        return self.pick(self.names_f), "elle", "e"

    def feeling(self, pronoun: str) -> str:
        m, f, _ = self.pick(self.feelings)
        return m if pronoun == "il" else f

    # ---------------------------------------------------------------- sentences
    _FAMILY_KINDS = np.cumsum([1, 1, 1, 1, 1, 1, 0.75, 0.4, 0.4, 0.4]).tolist()

    def family_sentence(self) -> str:
        kind = bisect_right(self._FAMILY_KINDS, self.random() * self._FAMILY_KINDS[-1])
        w, poss, pron, gen = self.member()
        if kind == 0:
            return f"{poss} {w} est {self.feeling(pron)} ."
        if kind == 1:
            w2, poss2, _, _ = self.member()
            rel = self.pick(self.relations_pos if self.random() < 0.6 else self.relations_neg)
            return f"{poss} {w} {rel} {poss2} {w2} ."
        if kind == 2:
            return f"{poss} {w} {self.pick(self.generation[gen])} ."
        if kind == 3:
            return f"je trouve que {poss} {w} est très {self.feeling(pron)} ."
        if kind == 4:
            return f"{pron} {self.pick(self.generation[gen])} et {pron} est {self.feeling(pron)} ."
        if kind == 5:
            rel = self.pick(self.relations)
            return f"je {rel} {poss} {w} car {pron} {self.pick(self.generation[gen])} ."
        if kind == 6:  # age: a generation context
            return f"{poss} {w} a {self.integer(*GENERATION_AGES[gen])} ans ."
        if kind == 7:
            return f"{poss} {w} habite à {self.pick(self.cities)} ."
        if kind == 8:
            return f"{poss} {w} mange {self.pick(self.foods)} {self.pick(self.times)} ."
        return f"{self.pick(self.times)} {poss} {w} est {self.feeling(pron)} ."

    def everyday_sentence(self) -> str:
        name, pron, e = self.person()
        kind = int(self.random() * 13)
        if kind == 10:
            return f"{name} part en vacances {self.pick(self.countries)} {self.pick(self.times)} ."
        if kind == 11:
            art, garment = self.pick(self.clothes).split()
            m, f = self.pick(self.colors)
            return f"{name} porte {art} {garment} {m if art == 'un' else f} {self.pick(self.times)} ."
        if kind == 12:
            return f"{name} {self.pick(self.activities)} {self.pick(self.times)} ."
        if kind == 0:
            return f"{name} {self.pick(self.hobbies)} {self.pick(self.times)} ."
        if kind == 1:
            return f"{name} va {self.pick(self.places)} {self.pick(self.transport)} {self.pick(self.times)} ."
        if kind == 2:
            if self.random() < 0.5:
                return f"{name} habite à {self.pick(self.cities)} ."
            return f"{name} est né{e} à {self.pick(self.cities)} ."
        if kind == 3:
            mark = self.random()
            subject = self.pick(self.subjects)
            if mark < 0.4:
                return f"{name} a une bonne note en {subject} et {pron} est {self.feeling(pron)} ."
            if mark < 0.7:
                return f"{name} a une mauvaise note en {subject} ."
            return f"{name} est fort{e} en {subject} mais {pron} déteste le {self.pick(self.subjects)} ."
        if kind == 4:
            return f"{name} mange {self.pick(self.foods)} {self.pick(self.times)} ."
        if kind == 5:
            return f"{name} a {self.pick(self.pets)} et {pron} est {self.feeling(pron)} ."
        if kind == 6:
            return f"{self.pick(self.times)} {self.pick(self.weather)} alors {name} reste à la maison ."
        if kind == 7:
            return f"{name} est {self.feeling(pron)} car {pron} {self.pick(self.hobbies)} {self.pick(self.times)} ."
        if kind == 8:
            other, _, _ = self.person()
            return f"{name} et {other} vont {self.pick(self.places)} {self.pick(self.times)} ."
        return f"{name} part à {self.pick(self.cities)} {self.pick(self.transport)} {self.pick(self.times)} ."

    def medical_sentence(self) -> str:
        organ, art, spec = self.pick(self.organs)
        kind = int(self.random() * 10)
        of = "du" if art == "le" else "de la"
        if kind == 0:
            w, poss, _, _ = self.member()
            return f"le {spec} examine {art} {organ} de {poss} {w} ."
        if kind == 1:
            return f"le {self.pick(self.exams)} {of} {organ} montre {self.pick(self.findings)} ."
        if kind == 2:
            return f"le {spec} propose une {self.pick(self.treatments)} pour le cancer {of} {organ} ."
        if kind == 3:
            w, poss, _, _ = self.member()
            return f"{poss} {w} consulte le {spec} pour {art} {organ} ."
        if kind == 4:
            return f"un rendez-vous chez le {spec} est prévu pour surveiller {art} {organ} ."
        if kind == 5:
            w, poss, _, _ = self.member()
            return f"{poss} {w} se plaint de {self.pick(self.symptoms)} depuis {self.pick(self.durations)} ."
        if kind == 6:
            return (f"le {self.pick(self.exams)} {of} {organ} montre {self.pick(self.findings)} "
                    f"de {self.integer(2, 60)} mm .")
        if kind == 7:
            name, pron, e = self.person()
            return f"{name} est hospitalisé{e} en {self.pick(self.services)} depuis {self.pick(self.durations)} ."
        if kind == 8:
            return (f"le traitement par {self.pick(self.drugs)} est {self.pick(self.states)} "
                    f"et le {spec} surveille {art} {organ} .")
        name, pron, e = self.person()
        return (f"{name} prend {self.pick(self.drugs)} {self.integer(1, 4)} fois par jour "
                f"contre {self.pick(self.symptoms)} .")


def synthetic_corpus(n_tokens: int = 1_000_000, seed: int = 0, medical_share: float = 0.3) -> SyntheticCorpus:
    """Generate about ``n_tokens`` tokens of synthetic French (family life, everyday life, medicine).

    Args:
        n_tokens: stop once at least this many tokens are generated (default one million, a few
            seconds; about 1,400 word types).
        seed: the same seed always gives the same corpus.
        medical_share: fraction of sentences about organs, exams, symptoms and specialists. The other
            sentences are 60 % about family members (the planted structure), 40 % everyday life.
    """
    if not isinstance(n_tokens, (int, np.integer)) or n_tokens < 1:
        raise ValueError(f"n_tokens must be a positive integer, got {n_tokens!r}")
    if not 0.0 <= medical_share <= 1.0:
        raise ValueError(f"medical_share must be in [0, 1], got {medical_share!r}")
    gen = _Generator(np.random.default_rng(seed))
    family_cut = medical_share + 0.6 * (1.0 - medical_share)
    sentences: list[list[str]] = []
    total = 0
    while total < n_tokens:
        u = gen.random()
        if u < medical_share:
            s = gen.medical_sentence()
        elif u < family_cut:
            s = gen.family_sentence()
        else:
            s = gen.everyday_sentence()
        tokens = s.split()
        sentences.append(tokens)
        total += len(tokens)
    return SyntheticCorpus(sentences, _planted_analogies(), _groups(), seed)
